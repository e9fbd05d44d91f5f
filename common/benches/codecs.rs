//! The two codecs considered for event payloads, on payloads of three
//! shapes: size after compression and time to compress and decompress
//! (contexts reused, as a long-running process would). Run with
//! `cargo bench -p hookfleet-common --bench codecs`; the figures are in
//! docs/BENCHMARKS.md ("Memory per delivery").

use std::hint::black_box;
use std::time::Instant;

const ROUNDS: u32 = 20_000;

fn payloads() -> Vec<(&'static str, String)> {
    let measured = format!(
        r#"{{"email":"ada@example.com","note":"{}","plan":"pro","user_id":"u_123456"}}"#,
        "x".repeat(120)
    );
    let invoice = r#"{"object":"invoice","id":"in_1QxYz2LkdIwHu7ixQ1a2B3c4","customer":"cus_R8f2Jd93kLm2Qa","amount_due":4900,"amount_paid":4900,"currency":"usd","status":"paid","lines":[{"id":"il_1QxYz2LkdIwHu7ixAbCdEf01","price":"price_1Pq8sLkdIwHu7ixZyX","quantity":1,"period":{"start":1733443200,"end":1736121600}}],"hosted_invoice_url":"https://invoice.example.com/i/acct_1Nv0FGQ9RKHgCVdK/test_YWNjdF8xTnYwRkdROVJLSGdDVmRLLF9SOGYySg","created":1733443215}"#.to_string();
    let items: Vec<String> = (0..8)
        .map(|i| {
            format!(
                r#"{{"sku":"SKU-{:05}","title":"Item number {i} in a longer title","qty":{},"unit_price":{}}}"#,
                1000 + i * 37,
                i % 3 + 1,
                1999 + i * 250
            )
        })
        .collect();
    let order = format!(
        r#"{{"order_id":"ord_8842","items":[{}],"shipping":{{"name":"Ada Lovelace","street":"12 St James's Square","city":"London","postcode":"SW1Y 4JH","country":"GB"}}}}"#,
        items.join(",")
    );
    vec![
        ("measure-memory's data", measured),
        ("an invoice", invoice),
        ("an order", order),
    ]
}

/// Nanoseconds per call of `f`.
fn time(mut f: impl FnMut()) -> u128 {
    let start = Instant::now();
    for _ in 0..ROUNDS {
        f();
    }
    start.elapsed().as_nanos() / u128::from(ROUNDS)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!(
        "| payload | bytes | codec | compressed | of the original | compress ns | decompress ns |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for (name, payload) in payloads() {
        let data = payload.as_bytes();
        let lz4 = lz4_flex::block::compress(data);
        let compress = time(|| {
            black_box(lz4_flex::block::compress(black_box(data)));
        });
        let decompress = time(|| {
            black_box(lz4_flex::block::decompress(black_box(&lz4), data.len()).ok());
        });
        row(name, data.len(), "LZ4", lz4.len(), compress, decompress);
        for level in [1, 3] {
            let mut compressor = zstd::bulk::Compressor::new(level)?;
            compressor.include_checksum(false)?;
            compressor.include_dictid(false)?;
            let mut decompressor = zstd::bulk::Decompressor::new()?;
            let zstd = compressor.compress(data)?;
            let compress = time(|| {
                black_box(compressor.compress(black_box(data)).ok());
            });
            let decompress = time(|| {
                black_box(decompressor.decompress(black_box(&zstd), data.len()).ok());
            });
            let codec = format!("zstd -{level}");
            row(name, data.len(), &codec, zstd.len(), compress, decompress);
        }
    }
    Ok(())
}

fn row(name: &str, len: usize, codec: &str, compressed: usize, compress: u128, decompress: u128) {
    println!(
        "| {name} | {len} | {codec} | {compressed} | {:.0} % | {compress} | {decompress} |",
        100.0 * compressed as f64 / len as f64
    );
}
