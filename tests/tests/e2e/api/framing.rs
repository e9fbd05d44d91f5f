//! Requests hyper refuses before any route runs (malformed framing, a URI
//! or header section too large, a garbage request line) are answered with
//! the same JSON error body as every other error, and the connection is
//! closed after it; well-formed requests, kept alive or over HTTP/2, are
//! answered as before. Each request is written on a raw socket, since no
//! HTTP client will send them.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use hookfleet_tests::TestApp;

/// One response as read off the wire.
struct Answer {
    status: u16,
    /// Header names lowercased.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Checks the JSON error shape, its framing, and `code`.
    fn assert_json_error(&self, status: u16, code: &str, case: &str) {
        assert_eq!(self.status, status, "{case}");
        let content_type = self.header("content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("application/json"),
            "{case}: content-type {content_type:?}"
        );
        let length: usize = self
            .header("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or_else(|| panic!("{case}: no content-length"));
        assert_eq!(length, self.body.len(), "{case}: content-length");
        assert_eq!(self.header("connection"), Some("close"), "{case}");
        let body: Value = serde_json::from_slice(&self.body)
            .unwrap_or_else(|err| panic!("{case}: body is not JSON ({err})"));
        assert_eq!(body["code"], code, "{case}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{case}: {body}");
    }
}

/// Reads a response head, then `content-length` bytes of body, or (with
/// `to_eof`) everything until the server closes, so that a wrong
/// `content-length` shows.
async fn read_answer(stream: &mut (impl AsyncRead + Unpin), to_eof: bool) -> Answer {
    let mut bytes = Vec::new();
    let head_end = loop {
        if let Some(at) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = stream
            .read(&mut chunk)
            .await
            .expect("read the response head");
        assert!(n > 0, "closed before a response head: {bytes:?}");
        bytes.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(bytes[..head_end].to_vec()).expect("the head is text");
    let mut lines = head.trim_end().split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = bytes[head_end..].to_vec();
    if to_eof {
        // A reset after the answer (the server closed with some of a large
        // request unread) ends the body like a close does.
        let _ = stream.read_to_end(&mut body).await;
    } else {
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .expect("a content-length");
        while body.len() < length {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.expect("read the body");
            assert!(n > 0, "closed in the body");
            body.extend_from_slice(&chunk[..n]);
        }
    }
    Answer {
        status,
        headers,
        body,
    }
}

/// Writes `request` on a new connection and reads the answer until the
/// server closes. Writing and reading go on at once: the server answers a
/// request that is too large without reading all of it, and the rest of
/// the write then fails, as expected.
async fn refused(app: &TestApp, request: Vec<u8>) -> Answer {
    let stream = TcpStream::connect(app.authority()).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let write = async move {
        let _ = writer.write_all(&request).await;
    };
    let exchange = async { tokio::join!(write, read_answer(&mut reader, true)).1 };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("an answer, then the connection closed")
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: hookfleet\r\n\r\n";

#[tokio::test]
async fn requests_hyper_cannot_parse_get_a_json_error_and_a_closed_connection() {
    let app = TestApp::builder().spawn().await;
    let long_uri = format!("/healthz?q={}", "a".repeat(70_000));
    let big_header = "a".repeat(1024 * 1024);
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "Content-Length that is not a number",
            "POST /api/v1/events HTTP/1.1\r\nhost: hookfleet\r\ncontent-length: abc\r\n\r\n{}"
                .into(),
            400,
            "bad_request",
        ),
        (
            "two Content-Lengths that disagree",
            "POST /api/v1/events HTTP/1.1\r\nhost: hookfleet\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}"
                .into(),
            400,
            "bad_request",
        ),
        (
            "a URI longer than hyper reads",
            format!("GET {long_uri} HTTP/1.1\r\nhost: hookfleet\r\n\r\n"),
            414,
            "uri_too_long",
        ),
        (
            "a 1 MB header section",
            format!("GET /healthz HTTP/1.1\r\nhost: hookfleet\r\nx-big: {big_header}\r\n\r\n"),
            431,
            "headers_too_large",
        ),
        (
            "more than 100 headers",
            format!(
                "GET /healthz HTTP/1.1\r\nhost: hookfleet\r\n{}\r\n",
                (0..120).map(|i| format!("x-h{i}: v\r\n")).collect::<String>()
            ),
            431,
            "headers_too_large",
        ),
        (
            "a garbage request line",
            "\x01\x02 what is this\r\n\r\n".into(),
            400,
            "bad_request",
        ),
        (
            "a request line with no HTTP version",
            "GET /healthz SMTP/1.1\r\nhost: hookfleet\r\n\r\n".into(),
            400,
            "bad_request",
        ),
    ];
    for (case, request, status, code) in cases {
        let answer = refused(&app, request.into_bytes()).await;
        answer.assert_json_error(status, code, case);
    }
    app.stop().await;
}

#[tokio::test]
async fn a_parse_error_after_a_good_request_on_the_same_connection_gets_a_json_error() {
    let app = TestApp::builder().spawn().await;
    let mut stream = TcpStream::connect(app.authority()).await.expect("connect");
    stream.write_all(HEALTHZ).await.expect("write");
    let first = read_answer(&mut stream, false).await;
    assert_eq!(first.status, 200);
    stream
        .write_all(b"POST /api/v1/events HTTP/1.1\r\nhost: hookfleet\r\ncontent-length: -1\r\n\r\n")
        .await
        .expect("write");
    let second = tokio::time::timeout(Duration::from_secs(10), read_answer(&mut stream, true))
        .await
        .expect("an answer, then the connection closed");
    second.assert_json_error(
        400,
        "bad_request",
        "a bad Content-Length, second on the connection",
    );
    app.stop().await;
}

#[tokio::test]
async fn well_formed_requests_are_answered_as_before_on_fresh_and_kept_alive_connections() {
    let app = TestApp::builder().spawn().await;

    // A fresh connection.
    let mut stream = TcpStream::connect(app.authority()).await.expect("connect");
    stream.write_all(HEALTHZ).await.expect("write");
    let answer = read_answer(&mut stream, false).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("connection"), None);

    // The same connection, kept alive, answers two more in turn.
    for _ in 0..2 {
        stream.write_all(HEALTHZ).await.expect("write");
        let answer = read_answer(&mut stream, false).await;
        assert_eq!(answer.status, 200);
    }

    // An error from a route keeps its own JSON body and the connection.
    stream
        .write_all(b"GET /api/v1/webhooks HTTP/1.1\r\nhost: hookfleet\r\n\r\n")
        .await
        .expect("write");
    let answer = read_answer(&mut stream, false).await;
    assert_eq!(answer.status, 401);
    let body: Value = serde_json::from_slice(&answer.body).expect("JSON");
    assert_eq!(body["code"], "unauthorized");
    stream.write_all(HEALTHZ).await.expect("write");
    assert_eq!(read_answer(&mut stream, false).await.status, 200);
    app.stop().await;
}

#[tokio::test]
async fn http2_with_prior_knowledge_still_works() {
    let app = TestApp::builder().spawn().await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    for _ in 0..2 {
        let response = client.get(app.url("/healthz")).send().await.expect("h2c");
        assert_eq!(response.version(), reqwest::Version::HTTP_2);
        assert_eq!(response.status(), 200);
    }
    let response = client
        .get(app.url("/api/v1/webhooks"))
        .send()
        .await
        .expect("h2c");
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["code"], "unauthorized");
    app.stop().await;
}
