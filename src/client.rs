//! The client side of the socket: connect, send one request, read one reply, and explain
//! transport failures in words a user can act on.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::protocol::{parse_reply, ErrorBody, ErrorCode, Request};

/// Why a request did not get a successful reply.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens at the socket path.
    #[error("daemon not running at {0}: start it with `frameseek serve` (or `systemctl start frameseek`)")]
    NotRunning(PathBuf),
    /// The socket exists but this user may not use it.
    #[error("permission denied on {0}: add yourself to the daemon's group (e.g. `sudo usermod -aG frameseek $USER`) and log in again")]
    PermissionDenied(PathBuf),
    /// The connection broke or timed out.
    #[error("lost the connection to the daemon at {path}: {source}")]
    Io {
        /// Socket path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The daemon answered with an error.
    #[error("{}: {}", .0.code.as_str(), .0.message)]
    Refused(ErrorBody),
}

/// A connection to the daemon.
#[derive(Debug)]
pub struct Client {
    path: PathBuf,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    /// Connects to the daemon at `path`.
    pub fn connect(path: &Path) -> Result<Self, ClientError> {
        let stream = UnixStream::connect(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                ClientError::NotRunning(path.to_path_buf())
            }
            std::io::ErrorKind::PermissionDenied => {
                ClientError::PermissionDenied(path.to_path_buf())
            }
            _ => ClientError::Io {
                path: path.to_path_buf(),
                source: e,
            },
        })?;
        let io = |source| ClientError::Io {
            path: path.to_path_buf(),
            source,
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(600)))
            .map_err(io)?;
        let writer = stream.try_clone().map_err(io)?;
        Ok(Self {
            path: path.to_path_buf(),
            reader: BufReader::new(stream),
            writer,
        })
    }

    /// Sends a request and returns the reply's payload.
    pub fn call(&mut self, request: &Request) -> Result<Value, ClientError> {
        let io = |source| ClientError::Io {
            path: self.path.clone(),
            source,
        };
        let mut line = request.to_line();
        line.push('\n');
        self.writer.write_all(line.as_bytes()).map_err(io)?;
        let mut reply = String::new();
        let n = self.reader.read_line(&mut reply).map_err(io)?;
        if n == 0 {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the daemon closed the connection",
            )));
        }
        parse_reply(reply.trim_end()).map_err(ClientError::Refused)
    }

    /// Sends `alerts_follow` and hands each incident line to `each` (as JSON) until `each`
    /// returns false or the daemon closes the connection; waits as long as it takes.
    pub fn follow(&mut self, mut each: impl FnMut(Value) -> bool) -> Result<(), ClientError> {
        let path = self.path.clone();
        let io = |source| ClientError::Io {
            path: path.clone(),
            source,
        };
        self.reader.get_ref().set_read_timeout(None).map_err(io)?;
        self.call(&Request::AlertsFollow)?;
        let mut line = String::new();
        loop {
            line.clear();
            if self.reader.read_line(&mut line).map_err(io)? == 0 {
                return Ok(());
            }
            let v: Value = serde_json::from_str(line.trim_end()).map_err(|e| {
                ClientError::Refused(ErrorBody::new(
                    ErrorCode::InvalidJson,
                    format!("daemon sent a line that is not JSON: {e}"),
                ))
            })?;
            if v.get("ok") == Some(&Value::Bool(false)) {
                return Err(ClientError::Refused(
                    parse_reply(line.trim_end()).expect_err("an error line"),
                ));
            }
            if !each(v) {
                return Ok(());
            }
        }
    }

    /// Sends a request and decodes the reply into `T`.
    pub fn call_as<T: serde::de::DeserializeOwned>(
        &mut self,
        request: &Request,
    ) -> Result<T, ClientError> {
        let v = self.call(request)?;
        serde_json::from_value(v).map_err(|e| ClientError::Io {
            path: self.path.clone(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("unexpected reply: {e}"),
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_socket_says_the_daemon_is_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let e = Client::connect(&dir.path().join("none.sock")).unwrap_err();
        assert!(matches!(e, ClientError::NotRunning(_)));
        assert!(e.to_string().contains("frameseek serve"));
    }

    #[test]
    fn a_stale_socket_file_says_the_daemon_is_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stale.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(matches!(
            Client::connect(&path).unwrap_err(),
            ClientError::NotRunning(_)
        ));
    }
}
