//! A request's head (request line and headers), read before hyper sees it: within [`MAX_HEAD`] bytes and the
//! timeout, parsed by httparse (hyper's own parser) with hyper's limits. So a head that is too long, too slow
//! or malformed gets lenet5's JSON refusal — hyper's own answer to those has an empty body — and hyper only
//! ever parses a head already accepted here.

use hyper::StatusCode;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The most bytes of request line and headers read before the request is refused (431).
pub const MAX_HEAD: usize = 32 << 10;
/// The most header lines: hyper's own limit, so hyper never refuses a head accepted here.
const MAX_HEADERS: usize = 100;
/// After a refusal, how much of what the client still sends is read and dropped (so that closing does not
/// reset the connection before the client has read the answer), and for how long at most.
const DRAIN_BYTES: usize = 8 << 20;
const DRAIN_TIME: Duration = Duration::from_secs(2);

/// What arrived before hyper.
pub enum Head {
    /// A complete, well-formed head, and whatever of the body came with it: replayed to hyper.
    Complete(Vec<u8>),
    /// Status and message of the refusal to send.
    Refused(u16, String),
    /// The client closed the connection, or it failed, before a head: nothing to answer.
    Gone,
}

/// Reads until the head is complete, refused, or the client is gone; never more than [`MAX_HEAD`] bytes.
pub async fn read(stream: &mut TcpStream, timeout: Duration) -> Head {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        match check(&buf) {
            Ok(true) => return Head::Complete(buf),
            Ok(false) => {}
            Err((status, message)) => return Head::Refused(status, message),
        }
        if buf.len() > MAX_HEAD {
            let kib = MAX_HEAD >> 10;
            return Head::Refused(431, format!("request line and headers over {kib} KiB"));
        }
        let want = chunk.len().min(MAX_HEAD + 1 - buf.len());
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk[..want])).await {
            Err(_elapsed) => {
                let seconds = timeout.as_secs();
                let message = format!("the request's headers did not arrive within {seconds} s");
                return Head::Refused(408, message);
            }
            Ok(Ok(0) | Err(_)) => return Head::Gone,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Whether `buf` holds a complete head (`false`: not yet), or why it is refused: what httparse refuses,
/// and what hyper refuses after it (hyper 1's `proto::h1::role`) — a target that is not a URI, a
/// Content-Length that is not one number of digits below 2^64 − 2, a Transfer-Encoding that is not HTTP/1.1's
/// ending in `chunked`.
fn check(buf: &[u8]) -> Result<bool, (u16, String)> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(buf) {
        Ok(httparse::Status::Partial) => return Ok(false),
        Ok(httparse::Status::Complete(_)) => {}
        Err(httparse::Error::TooManyHeaders) => {
            return Err((431, format!("more than {MAX_HEADERS} header lines")));
        }
        Err(e) => return Err((400, format!("malformed request: {e}"))),
    }
    let target = request.path.unwrap_or_default();
    if target.parse::<hyper::Uri>().is_err() {
        return Err((400, format!("malformed request target: {target:?}")));
    }
    let values = |name: &str| -> Vec<&[u8]> {
        (request.headers.iter())
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
            .collect()
    };
    let lengths: Vec<Option<u64>> = values("content-length").into_iter().map(length).collect();
    if lengths.iter().any(|l| l.is_none() || *l != lengths[0]) {
        return Err((400, "malformed Content-Length".to_string()));
    }
    let codings = values("transfer-encoding");
    let chunked_last = codings.last().is_some_and(|v| {
        let last = v.rsplit(|&b| b == b',').next().unwrap_or_default();
        last.trim_ascii().eq_ignore_ascii_case(b"chunked")
    });
    if !codings.is_empty() && (request.version != Some(1) || !chunked_last) {
        return Err((
            400,
            "Transfer-Encoding other than HTTP/1.1's ending in chunked".to_string(),
        ));
    }
    Ok(true)
}

/// A Content-Length value as hyper reads it: ASCII digits only, below 2^64 − 2.
fn length(value: &[u8]) -> Option<u64> {
    let digits = value.trim_ascii();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits)
        .ok()?
        .parse::<u64>()
        .ok()
        .filter(|&n| n < u64::MAX - 2)
}

/// Sends the refusal as JSON `{"error": message}` and closes, reading and dropping a bounded amount of what
/// the client still sends first, so the answer reaches it.
pub async fn refuse(mut stream: TcpStream, status: u16, message: &str, timeout: Duration) {
    let body = serde_json::json!({ "error": message }).to_string();
    let reason = (StatusCode::from_u16(status).ok())
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let answer = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\nx-content-type-options: \
         nosniff\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    if let Ok(Ok(())) = tokio::time::timeout(timeout, stream.write_all(answer.as_bytes())).await {
        let _ = stream.shutdown().await;
        let _ = tokio::time::timeout(DRAIN_TIME, drain(&mut stream)).await;
    }
}

/// Reads and drops what the client sends, up to [`DRAIN_BYTES`] or its end.
async fn drain(stream: &mut TcpStream) {
    let (mut chunk, mut read) = ([0u8; 4096], 0);
    while read < DRAIN_BYTES {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    fn head(lines: &str) -> Vec<u8> {
        format!("POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1:1\r\n{lines}\r\n").into_bytes()
    }

    #[test]
    fn complete_partial_and_refused_heads() {
        assert_eq!(check(b"GET /api/runs HTTP/1.1\r\nHost: a"), Ok(false));
        assert_eq!(check(&head("")), Ok(true));
        assert_eq!(
            check(&head("Content-Length: 5\r\nContent-Length: 5\r\n")),
            Ok(true)
        );
        let max_ok = format!("Content-Length: {}\r\n", u64::MAX - 3);
        assert_eq!(check(&head(&max_ok)), Ok(true));
        assert_eq!(
            check(&head("Transfer-Encoding: gzip, chunked\r\n")),
            Ok(true)
        );
        let too_long = format!("Content-Length: {}\r\n", u64::MAX - 2);
        for (lines, says) in [
            ("Content-Length: +5\r\n", "Content-Length"),
            ("Content-Length: \r\n", "Content-Length"),
            (
                "Content-Length: 5\r\nContent-Length: 6\r\n",
                "Content-Length",
            ),
            (too_long.as_str(), "Content-Length"),
            ("Transfer-Encoding: chunked, gzip\r\n", "Transfer-Encoding"),
        ] {
            let (status, message) = check(&head(lines)).unwrap_err();
            assert_eq!(status, 400, "{lines}");
            assert!(message.contains(says), "{lines}: {message}");
        }
        let old = b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(check(old).unwrap_err().0, 400);
        let many = head(&"X-A: 1\r\n".repeat(101));
        assert_eq!(check(&many).unwrap_err().0, 431);
        let target = b"GET /a<b HTTP/1.1\r\n\r\n";
        assert!(check(target).unwrap_err().1.contains("request target"));
    }
}
