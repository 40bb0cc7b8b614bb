//! The smallest HTTP/1.1 client Milvus's REST API needs: one request per connection
//! (`Connection: close`), a JSON body in, a JSON body out (length-delimited, chunked or to
//! the end of the stream). Plain `http://` only; see docs/OPERATIONS.md for TLS.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::MilvusError;

/// Largest reply body read (a search page of 16,384 rows with their fields fits well).
const MAX_REPLY_BYTES: usize = 64 << 20;

/// Where the REST API answers, and the credential sent with each request.
#[derive(Clone)]
pub struct Endpoint {
    host: String,
    port: u16,
    /// The URI as configured, for messages.
    uri: String,
    token: Option<String>,
    timeout: Duration,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("Endpoint").field("uri", &self.uri).finish()
    }
}

impl Endpoint {
    /// Parses `http://HOST:PORT` (a path, if any, is refused: the API's paths are fixed).
    pub fn parse(uri: &str, token: Option<String>, timeout: Duration) -> Result<Self, MilvusError> {
        let bad = |why: &str| MilvusError::BadUri {
            uri: uri.to_string(),
            why: why.to_string(),
        };
        let rest = if let Some(rest) = uri.strip_prefix("http://") {
            rest
        } else if uri.starts_with("https://") {
            return Err(bad("https is not supported by frameseek's client: reach the cluster through a local TLS-terminating proxy and give its http:// address"));
        } else {
            return Err(bad("it must start with http://"));
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') {
            return Err(bad("give only http://HOST:PORT, without a path"));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
                h.trim_start_matches('[').trim_end_matches(']'),
                p.parse::<u16>()
                    .map_err(|_| bad("the port is not a number"))?,
            ),
            _ => (rest, 19530),
        };
        if host.is_empty() {
            return Err(bad("the host is empty"));
        }
        Ok(Self {
            host: host.to_string(),
            port,
            uri: uri.to_string(),
            token,
            timeout,
        })
    }

    /// The URI as configured.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// POSTs `body` as JSON to `path` and returns the reply's JSON.
    pub fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, MilvusError> {
        self.request("POST", path, Some(body))
    }

    /// GETs `path` (with its query string) and returns the reply's JSON.
    pub fn get(&self, path: &str) -> Result<serde_json::Value, MilvusError> {
        self.request("GET", path, None)
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value, MilvusError> {
        let unreachable = |e: std::io::Error| MilvusError::Unreachable {
            uri: self.uri.clone(),
            source: e,
        };
        let addr = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(unreachable)?
            .next()
            .ok_or_else(|| unreachable(std::io::Error::other("the host name has no address")))?;
        let mut stream = TcpStream::connect_timeout(&addr, self.timeout).map_err(unreachable)?;
        stream
            .set_read_timeout(Some(self.timeout))
            .map_err(unreachable)?;
        stream
            .set_write_timeout(Some(self.timeout))
            .map_err(unreachable)?;
        stream.set_nodelay(true).map_err(unreachable)?;
        let payload = body.map_or_else(Vec::new, |b| {
            serde_json::to_vec(b).expect("JSON serialises")
        });
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.host,
            self.port,
            payload.len()
        );
        if let Some(token) = &self.token {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).map_err(unreachable)?;
        stream.write_all(&payload).map_err(unreachable)?;
        let (status, body) = read_reply(BufReader::new(stream)).map_err(unreachable)?;
        if status != 200 {
            return Err(MilvusError::Http {
                uri: self.uri.clone(),
                path: path.to_string(),
                status,
                body: String::from_utf8_lossy(&body[..body.len().min(500)]).into_owned(),
            });
        }
        serde_json::from_slice(&body).map_err(|e| MilvusError::Reply {
            path: path.to_string(),
            why: format!("not JSON: {e}"),
        })
    }
}

/// Reads a status line, headers and body (length-delimited, chunked, or to the end).
fn read_reply(mut r: impl BufRead) -> std::io::Result<(u16, Vec<u8>)> {
    let bad = |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_string());
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no HTTP status line in the reply"))?;
    let mut length = None;
    let mut chunked = false;
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(bad("the reply ended inside its headers"));
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| bad("bad Content-Length"))?,
                );
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| bad("bad chunk size"))?;
            if size == 0 {
                break;
            }
            if body.len() + size > MAX_REPLY_BYTES {
                return Err(bad("the reply is too large"));
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..])?;
            line.clear();
            r.read_line(&mut line)?;
        }
    } else if let Some(n) = length {
        if n > MAX_REPLY_BYTES {
            return Err(bad("the reply is too large"));
        }
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    } else {
        r.take(MAX_REPLY_BYTES as u64 + 1).read_to_end(&mut body)?;
        if body.len() > MAX_REPLY_BYTES {
            return Err(bad("the reply is too large"));
        }
    }
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_parsed_or_refused_with_the_reason() {
        let t = Duration::from_secs(1);
        let e = Endpoint::parse("http://milvus.local:19530", None, t).unwrap();
        assert_eq!((e.host.as_str(), e.port), ("milvus.local", 19530));
        let e = Endpoint::parse("http://10.0.0.5/", None, t).unwrap();
        assert_eq!((e.host.as_str(), e.port), ("10.0.0.5", 19530));
        let e = Endpoint::parse("http://[::1]:8080", None, t).unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 8080));
        for (uri, why) in [
            ("https://m:443", "https"),
            ("milvus:19530", "http://"),
            ("http://m:19530/v1", "without a path"),
            ("http://m:port", "not a number"),
        ] {
            let err = Endpoint::parse(uri, None, t).unwrap_err().to_string();
            assert!(err.contains(uri) && err.contains(why), "{err}");
        }
    }

    #[test]
    fn replies_are_read_by_length_chunks_or_to_the_end() {
        let by_length = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}extra";
        assert_eq!(read_reply(&by_length[..]).unwrap(), (200, b"{}".to_vec()));
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n";
        assert_eq!(
            read_reply(&chunked[..]).unwrap(),
            (200, b"{\"a\":1}".to_vec())
        );
        let to_end = b"HTTP/1.0 404 Not Found\r\n\r\nnope";
        assert_eq!(read_reply(&to_end[..]).unwrap(), (404, b"nope".to_vec()));
        assert!(read_reply(&b"garbage"[..]).is_err());
    }
}
