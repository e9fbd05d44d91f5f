//! Renders the phases' JSON records as `docs/BENCHMARKS.md`: the
//! conditions of the run, the targets with what was measured, and one
//! table per phase. Everything after [`NOTES_MARKER`] in an existing file
//! (the hand-written reading of the profile) is kept as it is.

use std::fmt::Write as _;

use serde_json::Value;

/// The line after which the report keeps the existing text.
pub const NOTES_MARKER: &str =
    "<!-- Everything below this line is written by hand and kept by scripts/bench. -->";

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn f0(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else {
        let whole = v.round() as i64;
        // Thousands separators: 14,000 reads better than 14000.
        let digits = whole.abs().to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        if whole < 0 {
            out.insert(0, '-');
        }
        out
    }
}

fn f1(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else {
        format!("{v:.1}")
    }
}

fn f2(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else {
        format!("{v:.2}")
    }
}

/// Milliseconds from a percentile's microseconds.
fn ms(p: &Value, field: &str) -> String {
    f2(num(&p[field]) / 1000.0)
}

fn met(ok: bool) -> &'static str {
    if ok {
        "yes"
    } else {
        "**no**"
    }
}

/// The whole generated part of the page.
pub fn render(records: &[Value], meta: &[(String, String)], notes: &str) -> String {
    let phase = |name: &'static str| records.iter().filter(move |r| r["phase"] == name);
    let mut out = String::new();
    let _ = writeln!(out, "# Benchmarks\n");
    let _ = writeln!(
        out,
        "Written by `scripts/bench` (see the README); every number below was \
         measured by it on the machine described here, with the whole stack \
         (Redis, the API, the worker(s), the receiver and the load driver) on \
         one box over loopback. Numbers from a shared or busy machine are \
         noisy: compare runs on the same machine only.\n"
    );
    let _ = writeln!(out, "## Conditions\n");
    let _ = writeln!(out, "| | |\n| --- | --- |");
    for (k, v) in meta {
        let _ = writeln!(out, "| {k} | {v} |");
    }

    // Targets.
    let best_rate = phase("throughput")
        .map(|r| num(&r["deliveries_per_s"]))
        .fold(f64::NAN, f64::max);
    let single_rate = phase("throughput")
        .find(|r| r["batch"] == 0)
        .map(|r| num(&r["deliveries_per_s"]))
        .unwrap_or(f64::NAN);
    let bare_rate = phase("bare")
        .map(|r| num(&r["requests_per_s"]))
        .next()
        .unwrap_or(f64::NAN);
    let p99 = phase("latency")
        .map(|r| num(&r["publish_to_receipt"]["p99_us"]) / 1000.0)
        .next()
        .unwrap_or(f64::NAN);
    let worker_rss = phase("throughput")
        .flat_map(|r| {
            r["peak_rss_mb"]
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| k.starts_with("worker"))
                .map(|(_, v)| num(v))
                .collect::<Vec<_>>()
        })
        .fold(f64::NAN, f64::max);
    let per_delivery = phase("backlog")
        .map(|r| num(&r["bytes_per_delivery_beyond_payload"]))
        .next()
        .unwrap_or(f64::NAN);
    let fanout_answer = phase("fanout")
        .map(|r| num(&r["publish_answer"]["p50_us"]) / 1000.0)
        .next()
        .unwrap_or(f64::NAN);
    let _ = writeln!(out, "\n## Targets\n");
    let _ = writeln!(
        out,
        "| measure | target | measured | met |\n| --- | --- | --- | --- |"
    );
    let _ = writeln!(
        out,
        "| deliveries/s end to end (best row) | ≥ 14,000 | {} | {} |",
        f0(best_rate),
        met(best_rate >= 14_000.0)
    );
    let ratio = single_rate / bare_rate;
    let batch_ratio = best_rate / bare_rate;
    let _ = writeln!(
        out,
        "| ratio to the bare loop (one event per request / best row) | ≥ 0.6 | {} / {} | {} |",
        f2(ratio),
        f2(batch_ratio),
        met(batch_ratio >= 0.6)
    );
    let _ = writeln!(
        out,
        "| p99 publish→receipt at 200 events/s | ≤ 3 ms | {} ms | {} |",
        f2(p99),
        met(p99 <= 3.0)
    );
    let _ = writeln!(
        out,
        "| worker peak RSS under the throughput run | ≤ 64 MB | {} MB | {} |",
        f1(worker_rss),
        met(worker_rss <= 64.0)
    );
    let _ = writeln!(
        out,
        "| Redis memory per queued delivery beyond the payload | ≤ 300 B | {} B | {} |",
        f0(per_delivery),
        met(per_delivery <= 300.0)
    );
    let _ = writeln!(
        out,
        "| fan-out to 1,000 endpoints: publish answers in (median) | ≤ 20 ms | {} ms | {} |",
        f1(fanout_answer),
        met(fanout_answer <= 20.0)
    );

    // 1. Throughput.
    let _ = writeln!(out, "\n## 1. Throughput\n");
    let _ = writeln!(
        out,
        "N events with a ~200-byte body to one endpoint, published by C \
         concurrent clients; *accepted* is N over the time until the last \
         publish was answered, *end to end* is deliveries over the time from \
         the first publish to the last receipt. CPU seconds are each \
         process's user + system time over the whole phase \
         (`/proc/<pid>/stat`).\n"
    );
    let names: Vec<String> = phase("throughput")
        .flat_map(|r| {
            r["cpu_s"]
                .as_object()
                .map(|m| m.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
        })
        .fold(Vec::new(), |mut acc, k| {
            if !acc.contains(&k) {
                acc.push(k);
            }
            acc
        });
    let mut header =
        "| publishing | N | C | accepted events/s | deliveries/s end to end |".to_string();
    let mut rule = "| --- | --- | --- | --- | --- |".to_string();
    for name in &names {
        let _ = write!(header, " CPU s {name} |");
        rule.push_str(" --- |");
    }
    let _ = writeln!(out, "{header}\n{rule}");
    for r in phase("throughput") {
        let how = match r["batch"].as_u64().unwrap_or(0) {
            0 => "`POST /api/v1/events`, one event per request".to_string(),
            b => format!("`POST /api/v1/events/batch`, {b} events per request"),
        };
        let mut row = format!(
            "| {how} | {} | {} | {} | {} |",
            f0(num(&r["events"])),
            r["clients"],
            f0(num(&r["accepted_per_s"])),
            f0(num(&r["deliveries_per_s"])),
        );
        for name in &names {
            let _ = write!(row, " {} |", f2(num(&r["cpu_s"][name])));
        }
        let _ = writeln!(out, "{row}");
    }

    for r in phase("throughput") {
        let Some(rows) = r["redis_commands"]
            .as_array()
            .filter(|rows| !rows.is_empty())
        else {
            continue;
        };
        let how = match r["batch"].as_u64().unwrap_or(0) {
            0 => "one event per request".to_string(),
            b => format!("batches of {b}"),
        };
        let _ = writeln!(
            out,
            "\nRedis per delivery, {how} (`INFO commandstats`; EVALSHA's time \
             includes the commands its scripts run, which are also listed \
             on their own):\n"
        );
        let _ = writeln!(
            out,
            "| command | calls per delivery | µs per delivery |\n| --- | --- | --- |"
        );
        for row in rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                row["command"].as_str().unwrap_or(""),
                f2(num(&row["calls"])),
                f1(num(&row["usec"])),
            );
        }
    }

    // 2. Latency.
    let _ = writeln!(out, "\n## 2. Latency\n");
    let _ = writeln!(
        out,
        "An open-loop publisher (one request every 1/R s, not waiting for \
         answers) at R events/s for S seconds, one endpoint. Publish→receipt \
         runs from just before the publish request is sent to the receiver \
         reading the delivery (same clock); *answer* is the publish \
         request's own round trip.\n"
    );
    let _ = writeln!(
        out,
        "| R/s | S | events | p50 ms | p95 ms | p99 ms | max ms | answer p50 ms | answer p99 ms |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    for r in phase("latency") {
        let l = &r["publish_to_receipt"];
        let a = &r["publish_answer"];
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r["rate"],
            r["seconds"],
            f0(num(&r["events"])),
            ms(l, "p50_us"),
            ms(l, "p95_us"),
            ms(l, "p99_us"),
            ms(l, "max_us"),
            ms(a, "p50_us"),
            ms(a, "p99_us"),
        );
    }

    // 3. Physical limit.
    let _ = writeln!(out, "\n## 3. Physical limit\n");
    let _ = writeln!(
        out,
        "The same receiver driven by a bare loop that calls the worker's own \
         `deliver::send` (same reqwest client and settings, same signing and \
         headers, same body size) with the worker's concurrency, and no \
         Redis or API.\n"
    );
    let _ = writeln!(
        out,
        "| requests | concurrency | requests/s | Hookfleet one event per request / bare | Hookfleet best row / bare |\n| --- | --- | --- | --- | --- |"
    );
    for r in phase("bare") {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            f0(num(&r["requests"])),
            r["concurrency"],
            f0(num(&r["requests_per_s"])),
            f2(ratio),
            f2(batch_ratio),
        );
    }

    // 4. Fan-out.
    let _ = writeln!(out, "\n## 4. Fan-out\n");
    let _ = writeln!(
        out,
        "One event to E endpoints of one tenant (all on the same receiver), \
         repeated; each run waits until every endpoint got it.\n"
    );
    let _ = writeln!(
        out,
        "| E | runs | publish answer median ms | max ms | all received median ms | max ms |\n| --- | --- | --- | --- | --- | --- |"
    );
    for r in phase("fanout") {
        let a = &r["publish_answer"];
        let all = &r["all_received"];
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            f0(num(&r["endpoints"])),
            r["complete"],
            ms(a, "p50_us"),
            ms(a, "max_us"),
            ms(all, "p50_us"),
            ms(all, "max_us"),
        );
    }

    // 5. Backlog.
    let _ = writeln!(out, "\n## 5. Backlog\n");
    let _ = writeln!(
        out,
        "N deliveries (N events to one endpoint, through the batch route) \
         queued with no worker running; Redis `used_memory` before and \
         after. *Beyond the payload* subtracts the stored body (the signed \
         JSON, once per event); with one endpoint per event it still counts \
         the event's own hash and index entries. Then W workers start and \
         drain it; the rate runs from the first receipt to the last.\n"
    );
    let _ = writeln!(
        out,
        "| N | queued events/s | API CPU µs per event | Redis CPU µs per event | body bytes | bytes per delivery | beyond the payload |\n| --- | --- | --- | --- | --- | --- | --- |"
    );
    for r in phase("backlog") {
        let n = num(&r["deliveries"]);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            f0(n),
            f0(num(&r["accepted_per_s"])),
            f1(num(&r["cpu_s"]["api"]) * 1e6 / n),
            f1(num(&r["cpu_s"]["redis"]) * 1e6 / n),
            r["body_bytes"],
            f0(num(&r["bytes_per_delivery"])),
            f0(num(&r["bytes_per_delivery_beyond_payload"])),
        );
    }
    let _ = writeln!(
        out,
        "\n| workers | deliveries | drain s | deliveries/s | worker CPU µs per delivery | Redis CPU µs per delivery |\n| --- | --- | --- | --- | --- | --- |"
    );
    for r in phase("drain") {
        let n = num(&r["received"]);
        let workers: f64 = r["cpu_s"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| k.starts_with("worker"))
                    .map(|(_, v)| num(v))
                    .sum()
            })
            .unwrap_or(f64::NAN);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            r["workers"],
            f0(n),
            f1(num(&r["seconds"])),
            f0(num(&r["deliveries_per_s"])),
            f1(workers * 1e6 / n),
            f1(num(&r["cpu_s"]["redis"]) * 1e6 / n),
        );
    }

    // 6. Peak RSS.
    let _ = writeln!(out, "\n## 6. Peak memory\n");
    let _ = writeln!(
        out,
        "`VmHWM` (peak resident set) of each process after each throughput \
         row (peaks only grow, so a later row includes the earlier ones).\n"
    );
    let _ = writeln!(
        out,
        "| after | process | peak RSS MB |\n| --- | --- | --- |"
    );
    for r in phase("throughput") {
        let after = match r["batch"].as_u64().unwrap_or(0) {
            0 => "one event per request".to_string(),
            b => format!("batches of {b}"),
        };
        if let Some(rss) = r["peak_rss_mb"].as_object() {
            for (name, mb) in rss {
                let _ = writeln!(out, "| {after} | {name} | {} |", f1(num(mb)));
            }
        }
    }

    let _ = write!(out, "\n{NOTES_MARKER}");
    out.push_str(notes);
    out
}
