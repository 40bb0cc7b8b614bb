//! `frameseek serve`: run the daemon until SIGTERM or SIGINT; SIGHUP reloads the
//! configuration.

use super::{Cli, EXIT_OK};
use crate::config::{Config, LogFormat};

pub fn run(cli: &Cli) -> anyhow::Result<u8> {
    let mut config = Config::load(cli.config.as_deref())?;
    init_logging(log_format(config.log.format)?);
    config.resolve_camera_urls()?;
    warn_exposed_secrets(&config, cli.config.as_deref());
    if let Some(socket) = &cli.socket {
        config.daemon.socket = socket.clone();
    }
    if !config.metrics.listen.is_empty() {
        let listener = crate::metrics::listener::MetricsListener::bind(
            &config.metrics.listen,
            &config.daemon.socket,
        )?;
        tracing::info!(address = %listener.local_addr()?, "metrics listener on GET /metrics");
        listener.spawn()?;
    }
    let listener = crate::daemon::Listener::from_config(&config);
    // A reload (SIGHUP) reads the configuration as above.
    let (file, socket) = (cli.config.clone(), cli.socket.clone());
    let reload: crate::daemon::ConfigLoader = Box::new(move || {
        let mut config = Config::load(file.as_deref())?;
        config.resolve_camera_urls()?;
        if let Some(socket) = &socket {
            config.daemon.socket = socket.clone();
        }
        Ok(config)
    });
    crate::daemon::run(config, listener, shutdown_signal(), reload)?;
    Ok(EXIT_OK)
}

/// Warns (log at start) when a configuration file or `url_file` every user may read holds
/// a camera password; `frameseek doctor` reports the same.
fn warn_exposed_secrets(config: &Config, file: Option<&std::path::Path>) {
    let system = std::path::Path::new(crate::config::SYSTEM_CONFIG_PATH);
    let files: Vec<&std::path::Path> = std::iter::once(system).chain(file).collect();
    let exposed = crate::config::world_readable_secrets(&files)
        .into_iter()
        .chain(crate::config::world_readable_url_files(&config.cameras));
    for e in exposed {
        tracing::warn!(file = %e.file.display(), camera = %e.camera, "a camera URL with a password is in a file every user may read: chmod 0640 it (group frameseek), or keep the URL in a url_file only root and frameseek may read, or in a url_credential");
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}

/// The log format in force: `FRAMESEEK_LOG_FORMAT` (`text` or `json`) over `[log] format`.
fn log_format(configured: LogFormat) -> anyhow::Result<LogFormat> {
    match std::env::var("FRAMESEEK_LOG_FORMAT").ok().as_deref() {
        None | Some("") => Ok(configured),
        Some("text") => Ok(LogFormat::Text),
        Some("json") => Ok(LogFormat::Json),
        Some(other) => anyhow::bail!("FRAMESEEK_LOG_FORMAT={other:?}: write text or json"),
    }
}

fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("FRAMESEEK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    if format == LogFormat::Json {
        // One object per line: timestamp, level, target, fields (message included).
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_current_span(false)
            .init();
        return;
    }
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
