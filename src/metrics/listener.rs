//! The optional metrics listener (`[metrics] listen`): a tiny HTTP/1.1 responder on a
//! loopback address, one thread, answering `GET /metrics` with the daemon's metrics, which
//! it asks the daemon for over its own Unix socket. A client can neither grow its memory
//! (requests are bounded) nor hold it for long (a deadline per connection), and nothing it
//! sends can stop the thread.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::client::Client;
use crate::protocol::{Request, StatsReply, StatusReply, StatusRequest};

/// The longest request head read, in bytes; a longer one is answered 431.
pub const MAX_REQUEST_BYTES: usize = 8192;

/// How long one connection may take to send its request and read the answer.
pub const CONNECTION_DEADLINE: Duration = Duration::from_secs(3);

/// Why a `[metrics] listen` address is refused.
pub fn check_address(text: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = text.parse().map_err(|_| {
        "not an address with a port: write one like 127.0.0.1:9464 or [::1]:9464".to_string()
    })?;
    if !addr.ip().is_loopback() {
        return Err(format!(
            "{} is not a loopback address: the metrics listener only listens on 127.0.0.1 or \
::1 (put a reverse proxy or node_exporter's textfile collector in front to reach it from \
elsewhere)",
            addr.ip()
        ));
    }
    Ok(addr)
}

/// A bound listener.
#[derive(Debug)]
pub struct MetricsListener {
    listener: TcpListener,
    socket: PathBuf,
}

impl MetricsListener {
    /// Binds `addr` (which must be loopback) to serve the metrics of the daemon at `socket`.
    pub fn bind(addr: &str, socket: &Path) -> anyhow::Result<Self> {
        let addr = check_address(addr)
            .map_err(|reason| anyhow::anyhow!("metrics.listen = {addr}: {reason}"))?;
        let listener = TcpListener::bind(addr)
            .with_context(|| format!("cannot listen for metrics on {addr}"))?;
        Ok(Self {
            listener,
            socket: socket.to_path_buf(),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves connections one at a time on a thread of its own, for the process's life.
    pub fn spawn(self) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                for stream in self.listener.incoming() {
                    match stream {
                        Ok(s) => {
                            if let Err(e) = serve_one(s, &self.socket) {
                                tracing::debug!(error = %e, "metrics connection");
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "metrics listener accept failed");
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }
                }
            })
    }
}

/// Reads the request head (up to the blank line), within the deadline and size bound.
/// `Ok(None)`: too large.
fn read_head(stream: &mut TcpStream, deadline: Instant) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        if head.len() > MAX_REQUEST_BYTES {
            return Ok(None);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(Some(head))
}

/// The status, content type and body for a request line.
fn respond(request_line: &str, socket: &Path) -> (&'static str, &'static str, String) {
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET" | "HEAD", "/metrics") => match fetch(socket) {
            Ok(text) => ("200 OK", super::CONTENT_TYPE, text),
            Err(e) => (
                "503 Service Unavailable",
                "text/plain; charset=utf-8",
                format!("the daemon did not answer: {e:#}\n"),
            ),
        },
        ("GET" | "HEAD", _) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "only /metrics is served here\n".into(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET /metrics\n".into(),
        ),
    }
}

/// Asks the daemon for its counters and state counts.
fn fetch(socket: &Path) -> anyhow::Result<String> {
    let mut client = Client::connect(socket)?;
    let stats: StatsReply = client.call_as(&Request::Stats)?;
    let status: StatusReply = client.call_as(&Request::Status(StatusRequest {
        limit: Some(0),
        source: None,
    }))?;
    Ok(super::render(&stats, Some(&status)))
}

fn serve_one(mut stream: TcpStream, socket: &Path) -> std::io::Result<()> {
    let deadline = Instant::now() + CONNECTION_DEADLINE;
    stream.set_write_timeout(Some(CONNECTION_DEADLINE))?;
    let (status, content_type, body, head_only) = match read_head(&mut stream, deadline)? {
        None => (
            "431 Request Header Fields Too Large",
            "text/plain; charset=utf-8",
            "request too large\n".to_string(),
            false,
        ),
        Some(head) => {
            let text = String::from_utf8_lossy(&head);
            let line = text.lines().next().unwrap_or("");
            let (s, t, b) = respond(line, socket);
            (s, t, b, line.starts_with("HEAD "))
        }
    };
    let mut reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        reply.extend_from_slice(body.as_bytes());
    }
    stream.write_all(&reply)?;
    stream.flush()?;
    // Close our side, then read what the client still sends (a request larger than read),
    // briefly and boundedly: closing with unread data would reset the connection and the
    // client could lose the answer.
    stream.shutdown(std::net::Shutdown::Write)?;
    stream.set_read_timeout(Some(DRAIN_TIMEOUT))?;
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    let drain_until = Instant::now() + 5 * DRAIN_TIMEOUT;
    while drained < DRAIN_MAX_BYTES && Instant::now() < drain_until {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
    Ok(())
}

/// How long a closing connection's leftover input is waited for, per read (five times
/// that in all).
const DRAIN_TIMEOUT: Duration = Duration::from_millis(200);
/// The most leftover input read from a closing connection.
const DRAIN_MAX_BYTES: usize = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_are_accepted() {
        assert!(check_address("127.0.0.1:9464").is_ok());
        assert!(check_address("[::1]:9464").is_ok());
        let e = check_address("0.0.0.0:9464").unwrap_err();
        assert!(e.contains("not a loopback address"), "{e}");
        assert!(check_address("192.168.1.2:9464").is_err());
        assert!(check_address("[::]:9464").is_err());
        assert!(check_address("localhost")
            .unwrap_err()
            .contains("127.0.0.1:9464"));
    }

    #[test]
    fn hostile_requests_get_an_answer_and_the_listener_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let l = MetricsListener::bind("127.0.0.1:0", &dir.path().join("none.sock")).unwrap();
        let addr = l.local_addr().unwrap();
        l.spawn().unwrap();
        let ask = |bytes: &[u8]| {
            let mut s = TcpStream::connect(addr).unwrap();
            let _ = s.write_all(bytes);
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            out
        };
        // Too large, a silent client (the deadline), a wrong path and method, then a real
        // request: the daemon is absent, so 503 with the reason.
        assert!(ask(&vec![b'a'; 3 * MAX_REQUEST_BYTES]).starts_with("HTTP/1.1 431"));
        let silent = TcpStream::connect(addr).unwrap();
        assert!(ask(b"GET /other HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        drop(silent);
        assert!(ask(b"POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
        let r = ask(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 503"), "{r}");
        assert!(r.contains("daemon not running"), "{r}");
    }
}
