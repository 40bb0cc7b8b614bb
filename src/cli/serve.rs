//! `frameseek serve`: run the daemon until SIGTERM or SIGINT.

use std::sync::Arc;

use anyhow::Context;

use super::{Cli, EXIT_OK};
use crate::config::Config;
use crate::daemon::Daemon;
use crate::notify::notify;

pub fn run(cli: &Cli) -> anyhow::Result<u8> {
    init_logging();
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(socket) = &cli.socket {
        config.daemon.socket = socket.clone();
    }
    let socket = config.daemon.socket.clone();
    // Before anything uses rayon: the global pool (ingest's image batches) runs niced, a
    // few steps below decoding.
    if !crate::priority::init_ingest_pool(config.ingest.embed_nice()) {
        tracing::warn!("rayon's global pool already existed; ingest runs at normal priority");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(64)
        .enable_all()
        .thread_name("frameseek-io")
        .build()
        .context("cannot start the async runtime")?;
    let daemon = Arc::new(Daemon::start(config)?);
    let (listener, owns_socket) = {
        let _guard = runtime.enter();
        crate::server::listen(&socket, &daemon.config().daemon.socket_group)?
    };
    tracing::info!(socket = %socket.display(), version = env!("CARGO_PKG_VERSION"), "listening");
    notify("READY=1");
    if daemon.has_watched_folders() {
        let d = daemon.clone();
        let every = std::time::Duration::from_secs_f64(d.config().ingest.watch_interval);
        runtime.spawn(async move {
            let seen = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
            loop {
                let (d, seen) = (d.clone(), seen.clone());
                let _ = tokio::task::spawn_blocking(move || {
                    d.scan_watched(&mut seen.lock().expect("watch state"))
                })
                .await;
                tokio::time::sleep(every).await;
            }
        });
    }
    if daemon.config().retention.policy().is_active() {
        let d = daemon.clone();
        let every = std::time::Duration::from_secs_f64(d.config().retention.interval);
        runtime.spawn(async move {
            loop {
                let d = d.clone();
                let _ = tokio::task::spawn_blocking(move || d.run_retention()).await;
                tokio::time::sleep(every).await;
            }
        });
    }
    {
        let d = daemon.clone();
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(DISK_CHECK_S)).await;
                let d = d.clone();
                let _ = tokio::task::spawn_blocking(move || d.check_disk()).await;
            }
        });
    }
    if let Some(every) = crate::notify::watchdog_interval() {
        let d = daemon.clone();
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                // Ping only when a request can be answered end to end (blocking pool + store).
                let d = d.clone();
                let alive = tokio::task::spawn_blocking(move || {
                    d.handle(crate::protocol::Request::Status).is_ok()
                })
                .await;
                if matches!(alive, Ok(true)) {
                    notify("WATCHDOG=1");
                } else {
                    tracing::error!("health check failed; not pinging the watchdog");
                }
            }
        });
    }
    runtime.block_on(crate::server::run(
        listener,
        daemon.clone(),
        shutdown_signal(),
    ));
    notify("STOPPING=1");
    tracing::info!("stopping: saving state");
    if owns_socket {
        let _ = std::fs::remove_file(&socket);
    }
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    daemon.shutdown()?;
    tracing::info!("stopped");
    Ok(EXIT_OK)
}

/// Seconds between checks for free space while a full disk has ingest stopped.
const DISK_CHECK_S: u64 = 5;

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}

fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("FRAMESEEK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if journald {
        builder.without_time().init();
    } else {
        builder.init();
    }
}
