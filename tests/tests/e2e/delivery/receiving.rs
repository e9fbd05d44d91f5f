//! The receiver examples in docs/RECEIVING.md run against real deliveries:
//! each must accept a genuine one and refuse a tampered body, a stale
//! timestamp and a signature of another version than `v1`. Each gets the
//! body as a receiver does, as raw bytes (Python `bytes`, a Node.js
//! `Buffer`), so an example that formats bytes into a string, or hashes a
//! re-encoded body, fails here. The examples are read from the document
//! itself, so the docs cannot drift from what works.

use std::io::Write;
use std::process::{Command, Stdio};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hookfleet_common::signing::{signature_header, Signer};
use hookfleet_common::time_util::now_ms;
use serde_json::{json, Value};

use hookfleet_tests::{
    python, require_node_standardwebhooks, spawn_receiver, Reply, TenantWithEndpoint, TestApp,
};

/// (marker, source) of every example tagged `hookfleet-test:`.
fn examples() -> Vec<(String, String)> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/RECEIVING.md"))
        .expect("docs/RECEIVING.md");
    let mut out = Vec::new();
    let mut rest = doc.as_str();
    while let Some(start) = rest.find("```") {
        let after = &rest[start + 3..];
        let Some(end) = after.find("```") else { break };
        let block = &after[..end];
        let code = block.split_once('\n').map(|(_, c)| c).unwrap_or("");
        if let Some(marker) = code
            .lines()
            .next()
            .and_then(|l| l.split("hookfleet-test:").nth(1))
        {
            out.push((marker.trim().to_string(), code.to_string()));
        }
        rest = &after[end + 3..];
    }
    out
}

/// Runs one example's `verify` on a request whose body is `body`, the raw
/// bytes; true when it accepts. The bytes travel base64-encoded and reach
/// `verify` decoded, as bytes.
fn run(marker: &str, code: &str, secret: &str, headers: &Value, body: &[u8]) -> bool {
    let input =
        json!({"secret": secret, "headers": headers, "body": STANDARD.encode(body)}).to_string();
    let (program, script) = if marker.starts_with("python") {
        let python = python();
        let runner = "\nimport base64, json, sys\nd = json.load(sys.stdin)\nbody = base64.b64decode(d['body'])\nassert isinstance(body, bytes)\nprint('valid' if verify(d['secret'], d['headers'], body) else 'invalid')\n";
        (python, format!("{code}{runner}"))
    } else {
        require_node_standardwebhooks();
        let runner = "\nconst d = JSON.parse(require('fs').readFileSync(0, 'utf8'));\nconst body = Buffer.from(d.body, 'base64');\nconsole.log(verify(d.secret, d.headers, body) ? 'valid' : 'invalid');\n";
        ("node".to_string(), format!("{code}{runner}"))
    };
    let flag = if marker.starts_with("python") {
        "-c"
    } else {
        "-e"
    };
    let mut child = Command::new(program)
        .arg(flag)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the example");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{marker} crashed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout.trim() == "valid"
}

#[tokio::test]
async fn the_documented_receivers_verify_real_deliveries() {
    let examples = examples();
    let markers: Vec<&str> = examples.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(
        markers,
        [
            "python-library",
            "python-plain",
            "node-library",
            "node-plain"
        ]
    );

    let app = TestApp::builder().with_worker().spawn().await;
    let receiver = spawn_receiver(vec![], Reply::status(200)).await;
    let TenantWithEndpoint { key, secret, .. } =
        app.tenant_with_endpoint(&receiver.url, &["*"]).await;
    app.publish(&key, "user.created", json!({"name": "Zoë", "amount": 12.5}))
        .await;
    let delivered = receiver.wait_for(1).await.remove(0);
    let headers = json!({
        "webhook-id": delivered.header("webhook-id"),
        "webhook-timestamp": delivered.header("webhook-timestamp"),
        "webhook-signature": delivered.header("webhook-signature"),
    });
    // A correctly signed request, but ten minutes old.
    let stale_ts = now_ms() / 1000 - 600;
    let id = delivered.header("webhook-id").unwrap();
    let signer = Signer::parse(&secret).unwrap();
    let stale = json!({
        "webhook-id": id,
        "webhook-timestamp": stale_ts.to_string(),
        "webhook-signature": signature_header(&signer, None, id, stale_ts, delivered.body.as_bytes()),
    });
    // The receiver's body is the bytes received (it is UTF-8 JSON, so its
    // `String` holds them unchanged), with a non-ASCII character in them:
    // a verifier that decodes or re-encodes loosely would show it.
    let body = delivered.body.as_bytes();
    assert!(!body.is_ascii(), "{}", delivered.body);
    let tampered = delivered.body.replace("12.5", "1250");
    assert_ne!(tampered, delivered.body);
    // The right signature, under a version other than v1.
    let mut other_version = headers.clone();
    other_version["webhook-signature"] = json!(delivered
        .header("webhook-signature")
        .unwrap()
        .replace("v1,", "v2,"));

    for (marker, code) in &examples {
        assert!(
            run(marker, code, &secret, &headers, body),
            "{marker} refused a genuine delivery"
        );
        assert!(
            !run(marker, code, &secret, &headers, tampered.as_bytes()),
            "{marker} accepted a tampered body"
        );
        assert!(
            !run(marker, code, &secret, &stale, body),
            "{marker} accepted a stale timestamp"
        );
        assert!(
            !run(marker, code, &secret, &other_version, body),
            "{marker} accepted a signature that is not v1"
        );
    }
    app.stop().await;
}
