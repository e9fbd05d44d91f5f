//! Third-party verifiers: the `standardwebhooks` libraries for Python and
//! Node.js, which must accept what the worker signs. They are found through
//! `HOOKFLEET_TEST_PYTHON` (a Python with `standardwebhooks`) and
//! `NODE_PATH` (a `node_modules` holding it); `scripts/test` sets up both.

use serde_json::json;

use super::Received;

/// A Python that can `import standardwebhooks`; panics with how to get one.
pub fn python() -> String {
    std::env::var("HOOKFLEET_TEST_PYTHON").unwrap_or_else(|_| {
        panic!(
            "HOOKFLEET_TEST_PYTHON is not set: point it at a Python with standardwebhooks \
             (`python3 -m venv .data/test-venv && .data/test-venv/bin/pip install \
             standardwebhooks pyyaml`, then HOOKFLEET_TEST_PYTHON=.data/test-venv/bin/python), \
             or run `scripts/test`, which does this"
        )
    })
}

/// Checks that Node.js can `require('standardwebhooks')`; panics with how
/// to set it up when it cannot.
pub fn require_node_standardwebhooks() {
    let found = std::process::Command::new("node")
        .args(["-e", "require('standardwebhooks')"])
        .output()
        .is_ok_and(|output| output.status.success());
    assert!(
        found,
        "node cannot require('standardwebhooks'): install Node.js and \
         `npm install --prefix .data/test-node standardwebhooks@1`, then set \
         NODE_PATH=.data/test-node/node_modules, or run `scripts/test`, which does this"
    );
}

/// Runs the `standardwebhooks` verifier; true when it accepts.
pub fn python_accepts(secret: &str, request: &Received) -> bool {
    let python = python();
    let script = r#"
import json, sys
from standardwebhooks.webhooks import Webhook
try:
    Webhook(sys.argv[1]).verify(sys.argv[2], json.loads(sys.argv[3]))
    print("valid")
except Exception as err:
    print("invalid", err)
"#;
    let headers = json!({
        "webhook-id": request.header("webhook-id"),
        "webhook-timestamp": request.header("webhook-timestamp"),
        "webhook-signature": request.header("webhook-signature"),
    });
    let output = std::process::Command::new(python)
        .args(["-c", script, secret, &request.body, &headers.to_string()])
        .output()
        .expect("run the verifier");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim() == "valid"
}
