//! Measurement commands: `bench-embed` (image-embedding throughput), `bench-text`
//! (text-query latency) and `bench-decode` (the decode-and-sample stage alone). Each prints
//! one line of figures per measurement, or JSON with `--json`.

pub mod decode;
pub mod embed;
pub mod text;

use crate::embed::{DeviceChoice, Precision};

/// Logs to stderr, filtered by `FRAMESEEK_LOG` (default `info`).
pub(super) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FRAMESEEK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Parses `--device` and `--dtype`, naming the flag in an error.
pub(super) fn parse_device(device: &str, dtype: &str) -> anyhow::Result<(DeviceChoice, Precision)> {
    let d = DeviceChoice::parse(device).map_err(|e| anyhow::anyhow!("--device {device}: {e}"))?;
    let p = Precision::parse(dtype).map_err(|e| anyhow::anyhow!("--dtype {dtype}: {e}"))?;
    Ok((d, p))
}
