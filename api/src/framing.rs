//! JSON bodies for the errors hyper answers before any route runs.
//!
//! When a request cannot be parsed as HTTP/1 (a garbage request line, a
//! `Content-Length` that is not a number or two that disagree, a URI over
//! 65,534 bytes, more than 100 headers or a header section over about
//! 400 KB: hyper's limits), hyper answers 400, 414 or 431 itself, with no
//! body, and closes the connection. Hyper has no hook for that response and
//! poem builds hyper's connection itself, so [`JsonErrors`] wraps the
//! listener's acceptor instead: each connection's stream is a
//! [`Connection`], which recognises that head on its way out and sends the
//! same response with an [`ErrorBody`] in its place. Every error a client
//! gets from the API, however early, then has the same JSON shape.
//!
//! Hyper writes the head of a parse error alone, as one write:
//! `HTTP/1.1 400 Bad Request`, `connection: close`, `content-length: 0`,
//! `date`, blank line. No response of ours looks like that (an error from a
//! route is JSON, so it has a `content-type` and a body), so matching it
//! exactly cannot catch one of them. Any other write costs a comparison or
//! three and goes to the stream as it is: nothing is copied or allocated.
//! One case is left as hyper sends it: a parse error behind a pipelined
//! response that is still waiting for a client that does not read shares
//! that response's write, and goes out without a body.
//!
//! HTTP/2 is left alone: an HTTP/2 server's first bytes are a SETTINGS
//! frame, not `HTTP/1.`, so a connection whose first write is anything else
//! passes through untouched from then on (h2 reports its errors in frames,
//! which have no body to fill).

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use poem::http::StatusCode;
use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::ErrorBody;

/// The longest head hyper writes for a parse error (the 431 status line,
/// `connection`, `content-length` and `date`) is about 120 bytes; writes
/// longer than this are not looked at.
const MAX_PARSE_ERROR_HEAD: usize = 256;

/// An acceptor whose connections answer HTTP/1 parse errors with a JSON
/// body (see the module doc). Wraps the acceptor the server would use.
pub struct JsonErrors<A> {
    inner: A,
}

impl<A: Acceptor> JsonErrors<A> {
    pub fn new(inner: A) -> Self {
        JsonErrors { inner }
    }
}

impl<A: Acceptor> Acceptor for JsonErrors<A> {
    type Io = Connection<A::Io>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(
        &mut self,
    ) -> io::Result<(Self::Io, LocalAddr, RemoteAddr, poem::http::uri::Scheme)> {
        let (io, local, remote, scheme) = self.inner.accept().await?;
        Ok((Connection::new(io), local, remote, scheme))
    }
}

/// What a connection has shown itself to be, from its first write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// Nothing written yet.
    Unknown,
    /// HTTP/1: writes are checked for a parse error's head.
    Http1,
    /// Anything else (HTTP/2): every write passes through.
    Other,
}

/// One accepted connection's stream. Reads pass through; a write that is
/// exactly hyper's head for a parse error is replaced by the same response
/// with a JSON body, and every other write goes to the stream as it is.
pub struct Connection<Io> {
    inner: Io,
    protocol: Protocol,
    /// The replacement response still to be written, and how much of it is.
    /// Hyper was told its head was written when this was queued, so it is
    /// written out before anything else, and before a flush or shutdown
    /// completes.
    pending: Option<(Vec<u8>, usize)>,
}

impl<Io> Connection<Io> {
    fn new(inner: Io) -> Self {
        Connection {
            inner,
            protocol: Protocol::Unknown,
            pending: None,
        }
    }
}

impl<Io: AsyncWrite + Unpin> Connection<Io> {
    /// Writes out the pending replacement, if any.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some((bytes, written)) = &mut self.pending {
            while *written < bytes.len() {
                let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                *written += n;
            }
            self.pending = None;
        }
        Poll::Ready(Ok(()))
    }
}

impl<Io: AsyncRead + Unpin> AsyncRead for Connection<Io> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

// Vectored writes are not forwarded: poem boxes every connection in a
// `BoxIo` that does not forward them either, so hyper writes each response
// as one flat buffer, and the default `poll_write_vectored` would come
// through `poll_write` anyway, so nothing bypasses the check.
impl<Io: AsyncWrite + Unpin> AsyncWrite for Connection<Io> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_pending(cx))?;
        if this.protocol == Protocol::Unknown && !buf.is_empty() {
            this.protocol = if buf.starts_with(b"HTTP/1.") {
                Protocol::Http1
            } else {
                Protocol::Other
            };
        }
        if this.protocol == Protocol::Http1 && may_be_parse_error(buf) {
            if let Some(response) = with_json_body(buf) {
                this.pending = Some((response, 0));
                // Hyper flushes right after writing this head, and the flush
                // writes the replacement out (or waits until it can).
                return Poll::Ready(Ok(buf.len()));
            }
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A quick look that rules out nearly every write: a parse error's head is
/// short, has a 4xx status and ends with the blank line.
#[inline]
fn may_be_parse_error(buf: &[u8]) -> bool {
    buf.len() <= MAX_PARSE_ERROR_HEAD && buf.get(9) == Some(&b'4') && buf.ends_with(b"\r\n\r\n")
}

/// If `head` is exactly the head hyper writes for a parse error (status
/// line, `content-length: 0`, `connection: close` and `date`, blank
/// line), the same response with a JSON [`ErrorBody`]: a content type and
/// length are added, hyper's other lines kept.
fn with_json_body(head: &[u8]) -> Option<Vec<u8>> {
    let head = std::str::from_utf8(head).ok()?.strip_suffix("\r\n\r\n")?;
    let (status_line, headers) = head.split_once("\r\n")?;
    // "HTTP/1.1 " or "HTTP/1.0 ", then three digits and a reason phrase.
    let status = StatusCode::from_bytes(status_line.as_bytes().get(9..12)?).ok()?;
    let body = ErrorBody::unparsable_request(status)?;
    let mut empty = false;
    let mut kept = Vec::with_capacity(2);
    for line in headers.split("\r\n") {
        let (name, value) = line.split_once(':')?;
        match name.to_ascii_lowercase().as_str() {
            "content-length" if value.trim() == "0" => empty = true,
            "connection" | "date" => kept.push(line),
            _ => return None,
        }
    }
    if !empty {
        return None;
    }
    let body = serde_json::to_vec(&body).ok()?;
    let mut response = Vec::with_capacity(MAX_PARSE_ERROR_HEAD + body.len());
    response.extend_from_slice(status_line.as_bytes());
    response.extend_from_slice(b"\r\ncontent-type: application/json; charset=utf-8\r\n");
    response.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    for line in kept {
        response.extend_from_slice(line.as_bytes());
        response.extend_from_slice(b"\r\n");
    }
    response.extend_from_slice(b"\r\n");
    response.extend_from_slice(&body);
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::with_json_body;

    #[test]
    fn only_a_bodiless_parse_error_head_is_rewritten() {
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Thu, 01 Jan 2026 00:00:00 GMT\r\n\r\n";
        let response = String::from_utf8(with_json_body(head).unwrap()).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(head.contains("\r\nconnection: close\r\n"));
        assert!(head.contains("\r\ndate: Thu, 01 Jan 2026 00:00:00 GMT"));
        assert!(head.contains(&format!("\r\ncontent-length: {}", body.len())));
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["code"], "headers_too_large");

        // Ours: a body, or a content type; or a status hyper does not use.
        for other in [
            &b"HTTP/1.1 400 Bad Request\r\ncontent-length: 30\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
        ] {
            assert!(with_json_body(other).is_none(), "{other:?}");
        }
    }
}
