//! The Unix-socket server: accepts connections (bounded), reads one request per line (with
//! a length limit and an idle timeout), answers each on the blocking pool so the I/O runtime
//! never waits on the model, and stops when the shutdown future resolves.

use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, Semaphore};

use crate::protocol::{error_line, ok_line, parse_request, ErrorBody, ErrorCode, Request};

/// What answers requests: the daemon. Called on tokio's blocking pool, so it may block.
pub trait Handler: Send + Sync + 'static {
    /// Answers one request with its reply payload or an error.
    fn handle(&self, request: Request) -> Result<serde_json::Value, ErrorBody>;

    /// A subscription to what `alerts_follow` streams, one JSON line per item; `None` when
    /// this handler streams nothing.
    fn follow(&self) -> Option<broadcast::Receiver<Arc<str>>> {
        None
    }
}

/// Bounds on connections and requests (`[daemon]` in the configuration).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// Longest request line; a longer one is answered `too_large` and the connection closed.
    pub max_request_bytes: usize,
    /// Silence after which a connection is closed (also the limit for writing a reply).
    pub idle_timeout: Duration,
    /// Request bytes buffered at once by all connections together; a line that cannot get
    /// its bytes within [`BUDGET_WAIT`] is answered `busy` and its connection closed.
    pub max_request_bytes_total: usize,
}

/// How long a connection waits for room in the shared request-byte budget before its
/// request is refused `busy`.
pub const BUDGET_WAIT: Duration = Duration::from_secs(2);

/// Bytes of the shared request budget held by one connection (its line being read and the
/// request being answered); given back when dropped.
struct Held {
    budget: Arc<Semaphore>,
    bytes: usize,
}

impl Held {
    /// Takes `n` more bytes of the budget, waiting up to [`BUDGET_WAIT`]; false when the
    /// budget stayed full.
    async fn take(&mut self, n: usize) -> bool {
        let Ok(count) = u32::try_from(n) else {
            return false;
        };
        let acquire = self.budget.clone().acquire_many_owned(count);
        match tokio::time::timeout(BUDGET_WAIT, acquire).await {
            Ok(Ok(permit)) => {
                permit.forget();
                self.bytes += n;
                true
            }
            _ => false,
        }
    }

    /// Gives every held byte back.
    fn release(&mut self) {
        self.budget.add_permits(std::mem::take(&mut self.bytes));
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.release();
    }
}

/// Why a request line was not read.
enum Refused {
    /// Longer than `max_request_bytes`.
    TooLarge,
    /// The shared budget (`max_request_bytes_total`) stayed full.
    Busy,
}

/// The listening socket: handed over by systemd (socket activation, `LISTEN_FDS`), or
/// bound here. Returns whether this process created the socket file (and must remove it).
pub fn listen(path: &Path, group: &str) -> anyhow::Result<(UnixListener, bool)> {
    if let Some(listener) = from_systemd()? {
        tracing::info!("using the socket passed by systemd");
        return Ok((listener, false));
    }
    Ok((bind(path, group)?, true))
}

/// Takes fd 3 when systemd passed exactly one socket to this process.
fn from_systemd() -> anyhow::Result<Option<UnixListener>> {
    use std::os::fd::FromRawFd;
    let pid_matches = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let fds = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<i32>().ok())
        .unwrap_or(0);
    if !pid_matches || fds < 1 {
        return Ok(None);
    }
    if fds > 1 {
        anyhow::bail!(
            "systemd passed {fds} sockets; frameseek.socket must declare exactly one ListenStream"
        );
    }
    // SAFETY: systemd guarantees fd 3 is an open listening socket owned by this process.
    let std_listener = unsafe { std::os::unix::net::UnixListener::from_raw_fd(3) };
    std_listener.set_nonblocking(true)?;
    Ok(Some(UnixListener::from_std(std_listener)?))
}

/// Creates the socket's folder (mode 0750) and binds the socket with mode 0660 and the
/// configured group, replacing a stale socket file left by a crash (but refusing to steal
/// one a live daemon answers on, or to live in a world-writable folder).
pub fn bind(path: &Path, group: &str) -> anyhow::Result<UnixListener> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o750)
                .create(dir)
                .with_context(|| format!("cannot create socket folder {}", dir.display()))?;
        }
        let mode = std::fs::metadata(dir)
            .with_context(|| format!("cannot read socket folder {}", dir.display()))?
            .mode();
        if mode & 0o002 != 0 {
            anyhow::bail!(
                "socket folder {} is world-writable; put the socket in a private folder (e.g. /run/frameseek/frameseek.sock)",
                dir.display()
            );
        }
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!("another daemon is already listening on {}", path.display());
        }
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove stale socket {}", path.display()))?;
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("cannot listen on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("cannot set permissions on {}", path.display()))?;
    if !group.is_empty() {
        let gid = group_id(group)
            .with_context(|| format!("daemon.socket_group = {group:?}: no such group"))?;
        std::os::unix::fs::chown(path, None, Some(gid))
            .with_context(|| format!("cannot give {} to group {group}", path.display()))?;
    }
    Ok(listener)
}

/// Looks a group up by name (or takes a numeric id).
fn group_id(name: &str) -> Option<u32> {
    if let Ok(id) = name.parse::<u32>() {
        return Some(id);
    }
    let groups = std::fs::read_to_string("/etc/group").ok()?;
    groups.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == name).then(|| fields.nth(1)?.parse().ok())?
    })
}

/// Serves connections until `shutdown` resolves, then waits for open connections to end.
pub async fn run<H: Handler>(
    listener: UnixListener,
    handler: Arc<H>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let budget = Arc::new(Semaphore::new(
        limits.max_request_bytes_total.min(Semaphore::MAX_PERMITS),
    ));
    let (stop_tx, _) = broadcast::channel::<()>(1);
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = slots.clone().acquire_owned() => p.expect("semaphore never closed"),
        };
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let handler = handler.clone();
        let stop = stop_tx.subscribe();
        let held = Held {
            budget: budget.clone(),
            bytes: 0,
        };
        tasks.spawn(async move {
            let uid = stream.peer_cred().ok().map(|c| c.uid());
            tracing::info!(peer_uid = ?uid, "connection");
            if let Err(e) = serve_connection(stream, handler, limits, held, stop).await {
                tracing::debug!(peer_uid = ?uid, error = %e, "connection ended");
            }
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    let _ = stop_tx.send(());
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(10), drain)
        .await
        .is_err()
    {
        tracing::warn!("connections still open after 10 s; closing them");
    }
}

/// Reads one line of at most `max` bytes, taking its bytes from the shared budget (`held`)
/// as they arrive. `Ok(None)` at a clean end of stream; `Refused` when the line is longer
/// than allowed or the budget stayed full.
async fn read_line<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    buf: &mut Vec<u8>,
    max: usize,
    held: &mut Held,
) -> std::io::Result<Option<Result<(), Refused>>> {
    buf.clear();
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(if buf.is_empty() { None } else { Some(Ok(())) });
        }
        let found = available.iter().position(|&b| b == b'\n');
        let (n, used) = match found {
            Some(i) => (i, i + 1),
            None => (available.len(), available.len()),
        };
        if buf.len() + n > max {
            return Ok(Some(Err(Refused::TooLarge)));
        }
        if !held.take(n).await {
            return Ok(Some(Err(Refused::Busy)));
        }
        // The reader's buffer is unchanged while waiting: nothing was consumed.
        let available = reader.fill_buf().await?;
        buf.extend_from_slice(&available[..n]);
        reader.consume(used);
        if found.is_some() {
            return Ok(Some(Ok(())));
        }
    }
}

async fn serve_connection<H: Handler>(
    stream: UnixStream,
    handler: Arc<H>,
    limits: Limits,
    mut held: Held,
    mut stop: broadcast::Receiver<()>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let max = limits.max_request_bytes;
    let idle = limits.idle_timeout;
    let mut buf = Vec::new();
    loop {
        let line = tokio::select! {
            _ = stop.recv() => return Ok(()),
            r = tokio::time::timeout(idle, read_line(&mut reader, &mut buf, max, &mut held)) => match r {
                Err(_) => return Ok(()),
                Ok(r) => r?,
            },
        };
        let reply = match line {
            None => return Ok(()),
            Some(Err(refused)) => {
                let e = match refused {
                    Refused::TooLarge => ErrorBody::new(
                        ErrorCode::TooLarge,
                        format!("request line longer than {max} bytes; connection closed"),
                    ),
                    Refused::Busy => ErrorBody::new(
                        ErrorCode::Busy,
                        format!(
                            "the daemon holds {} request bytes from all connections (daemon.max_request_bytes_total); connection closed, send the request again later",
                            limits.max_request_bytes_total
                        ),
                    ),
                };
                held.release();
                write
                    .write_all(format!("{}\n", error_line(None, &e)).as_bytes())
                    .await?;
                return Ok(());
            }
            Some(Ok(())) => {
                let trimmed = buf.strip_suffix(b"\r").unwrap_or(&buf);
                if trimmed.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match parse_request(trimmed) {
                    Ok((id, Request::AlertsFollow)) => {
                        held.release();
                        return follow(handler.as_ref(), id, reader, write, stop, idle).await;
                    }
                    parsed => answer(&handler, parsed).await,
                }
            }
        };
        // The request is answered: its bytes go back to the budget.
        held.release();
        let send = async {
            write.write_all(reply.as_bytes()).await?;
            write.write_all(b"\n").await
        };
        // A client that never reads its replies is dropped rather than holding a slot.
        match tokio::time::timeout(idle, send).await {
            Ok(r) => r?,
            Err(_) => return Ok(()),
        }
    }
}

/// `alerts_follow`: one reply line, then every line the handler's subscription yields,
/// until the client closes the connection, the daemon stops, a line cannot be written
/// within the idle timeout, or the subscriber falls behind (`lagged`). The connection holds
/// one of `max_connections` slots and no request bytes; the idle timeout does not apply
/// while nothing is sent.
async fn follow<H: Handler>(
    handler: &H,
    id: Option<serde_json::Value>,
    mut reader: BufReader<tokio::net::unix::OwnedReadHalf>,
    mut write: tokio::net::unix::OwnedWriteHalf,
    mut stop: broadcast::Receiver<()>,
    idle: Duration,
) -> std::io::Result<()> {
    let Some(mut lines) = handler.follow() else {
        let e = ErrorBody::new(ErrorCode::UnknownOp, "this daemon streams nothing");
        write
            .write_all(format!("{}\n", error_line(id, &e)).as_bytes())
            .await?;
        return Ok(());
    };
    let first = ok_line(id, &serde_json::json!({ "following": true }));
    write.write_all(format!("{first}\n").as_bytes()).await?;
    let mut ignored = [0u8; 512];
    loop {
        tokio::select! {
            _ = stop.recv() => return Ok(()),
            r = reader.read(&mut ignored) => match r {
                Ok(0) | Err(_) => return Ok(()),
                Ok(_) => continue,
            },
            line = lines.recv() => match line {
                Ok(line) => {
                    let send = async {
                        write.write_all(line.as_bytes()).await?;
                        write.write_all(b"\n").await
                    };
                    match tokio::time::timeout(idle, send).await {
                        Ok(r) => r?,
                        Err(_) => return Ok(()),
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    let e = ErrorBody::new(
                        ErrorCode::Lagged,
                        format!("this follower fell {missed} incidents behind and is closed; follow again and read the gap with `frameseek alerts --since`"),
                    );
                    write
                        .write_all(format!("{}\n", error_line(None, &e)).as_bytes())
                        .await?;
                    return Ok(());
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
        }
    }
}

type Parsed = Result<(Option<serde_json::Value>, Request), (Option<serde_json::Value>, ErrorBody)>;

async fn answer<H: Handler>(handler: &Arc<H>, parsed: Parsed) -> String {
    let (id, request) = match parsed {
        Ok(x) => x,
        Err((id, e)) => return error_line(id, &e),
    };
    let h = handler.clone();
    match tokio::task::spawn_blocking(move || h.handle(request)).await {
        Ok(Ok(payload)) => ok_line(id, &payload),
        Ok(Err(e)) => error_line(id, &e),
        Err(join) => error_line(
            id,
            &ErrorBody::new(
                ErrorCode::Internal,
                format!("request handler failed: {join}"),
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_socket_is_group_only_and_refuses_world_writable_folders() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/fs.sock");
        let _l = bind(&path, "").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o660);
        assert_eq!(
            std::fs::metadata(path.parent().unwrap()).unwrap().mode() & 0o777,
            0o750
        );
        assert!(bind(&path, "")
            .unwrap_err()
            .to_string()
            .contains("already listening"));

        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = bind(&open.join("fs.sock"), "").unwrap_err().to_string();
        assert!(e.contains("world-writable"), "{e}");
    }

    #[test]
    fn groups_resolve_by_name_or_number() {
        assert_eq!(group_id("root"), Some(0));
        assert_eq!(group_id("1234"), Some(1234));
        assert_eq!(group_id("no-such-group-here"), None);
    }
}
