//! The Unix-socket server: accepts connections (bounded), reads one request per line (with
//! a length limit and an idle timeout), answers each on the blocking pool so the I/O runtime
//! never waits on the model, and stops when the shutdown future resolves.

use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, Semaphore};

use crate::daemon::Daemon;
use crate::protocol::{error_line, ok_line, parse_request, ErrorBody, ErrorCode};

/// Creates the socket's folder and binds the socket with mode 0660, replacing a stale
/// socket file left by a crash (but refusing to steal one a live daemon answers on).
pub fn bind(path: &Path) -> anyhow::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create socket folder {}", dir.display()))?;
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
    Ok(listener)
}

/// Serves connections until `shutdown` resolves, then waits for open connections to end.
pub async fn run(listener: UnixListener, daemon: Arc<Daemon>, shutdown: impl Future<Output = ()>) {
    let limits = Arc::new(Semaphore::new(daemon.config().daemon.max_connections));
    let (stop_tx, _) = broadcast::channel::<()>(1);
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = limits.clone().acquire_owned() => p.expect("semaphore never closed"),
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
        let daemon = daemon.clone();
        let stop = stop_tx.subscribe();
        tasks.spawn(async move {
            let uid = stream.peer_cred().ok().map(|c| c.uid());
            tracing::debug!(peer_uid = ?uid, "connection");
            if let Err(e) = serve_connection(stream, daemon, stop).await {
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

/// Reads one line of at most `max` bytes. `Ok(None)` at a clean end of stream; `Err` with
/// `TooLarge` when the line is longer than allowed.
async fn read_line<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<Result<(), ()>>> {
    buf.clear();
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(if buf.is_empty() { None } else { Some(Ok(())) });
        }
        let (chunk, found) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        if buf.len() + chunk.len() > max {
            return Ok(Some(Err(())));
        }
        buf.extend_from_slice(chunk);
        let used = found.unwrap_or(available.len());
        reader.consume(used);
        if found.is_some() {
            return Ok(Some(Ok(())));
        }
    }
}

async fn serve_connection(
    stream: UnixStream,
    daemon: Arc<Daemon>,
    mut stop: broadcast::Receiver<()>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let max = daemon.config().daemon.max_request_bytes;
    let idle = Duration::from_secs_f64(daemon.config().daemon.idle_timeout);
    let mut buf = Vec::new();
    loop {
        let line = tokio::select! {
            _ = stop.recv() => return Ok(()),
            r = tokio::time::timeout(idle, read_line(&mut reader, &mut buf, max)) => match r {
                Err(_) => return Ok(()),
                Ok(r) => r?,
            },
        };
        let reply = match line {
            None => return Ok(()),
            Some(Err(())) => {
                let e = ErrorBody::new(
                    ErrorCode::TooLarge,
                    format!("request line longer than {max} bytes; connection closed"),
                );
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
                answer(&daemon, trimmed).await
            }
        };
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

async fn answer(daemon: &Arc<Daemon>, line: &[u8]) -> String {
    let (id, request) = match parse_request(line) {
        Ok(x) => x,
        Err((id, e)) => return error_line(id, &e),
    };
    let d = daemon.clone();
    match tokio::task::spawn_blocking(move || d.handle(request)).await {
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
