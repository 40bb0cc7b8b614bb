//! Checks of the values serde cannot check: ranges, paths, camera names, each error naming
//! the key as the user writes it.

use std::path::Path;

use super::{
    CameraConfig, Config, ConfigError, DaemonConfig, IngestConfig, ModelConfig, RetentionConfig,
};

pub(super) fn invalid(key: impl Into<String>, value: impl ToString, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// Checks the sampling keys of `[ingest]` or of one camera (`prefix`: `ingest` or
/// `cameras[N]`).
fn check_sampling(
    prefix: &str,
    interval: Option<f64>,
    threshold: Option<f32>,
    max_gap: Option<f64>,
) -> Result<(), ConfigError> {
    if let Some(v) = interval {
        if !(v.is_finite() && (0.01..=86_400.0).contains(&v)) {
            return Err(invalid(
                format!("{prefix}.sample_interval"),
                v,
                "must be between 0.01 and 86400 seconds",
            ));
        }
    }
    if let Some(v) = threshold {
        if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
            return Err(invalid(
                format!("{prefix}.scene_threshold"),
                v,
                "must be between 0 and 1",
            ));
        }
    }
    if let Some(v) = max_gap {
        if !(v.is_finite() && v > 0.0) {
            return Err(invalid(
                format!("{prefix}.scene_max_gap"),
                v,
                "must be a positive number of seconds",
            ));
        }
    }
    Ok(())
}

/// Checks the `[[cameras]]` entries: names unique and usable as source ids, URLs of a
/// known kind, sampling keys in range.
fn check_cameras(cameras: &[CameraConfig]) -> Result<(), ConfigError> {
    let mut names = std::collections::HashSet::new();
    for (i, c) in cameras.iter().enumerate() {
        let key = |k: &str| format!("cameras[{i}].{k}");
        let name = c.name.trim();
        if name.is_empty() || name != c.name {
            return Err(invalid(
                key("name"),
                format!("{:?}", c.name),
                "must be a non-empty name without surrounding spaces",
            ));
        }
        if name.starts_with('/') || name.contains('*') || name.contains("://") {
            return Err(invalid(
                key("name"),
                &c.name,
                "must not start with / or contain * or :// (it is the source id users filter by)",
            ));
        }
        if !names.insert(name) {
            return Err(invalid(
                key("name"),
                &c.name,
                "another camera has this name",
            ));
        }
        let origins = c.url_origins();
        if origins.len() != 1 {
            return Err(invalid(
                key("url"),
                format!("{origins:?}"),
                "set exactly one of url, url_file (a file holding the URL) or url_credential (a systemd credential holding it)",
            ));
        }
        if !c.url.is_empty() {
            check_camera_url(i, &c.url)?;
        }
        if let Some(zone) = &c.time_zone {
            crate::clock::time_zone(zone)
                .map_err(|reason| invalid(key("time_zone"), zone, &reason))?;
        }
        check_sampling(
            &format!("cameras[{i}]"),
            c.sample_interval,
            c.scene_threshold,
            c.scene_max_gap,
        )?;
    }
    Ok(())
}

/// Checks the form of camera `i`'s URL (inline, or read from its file or credential); the
/// error shows it redacted.
pub(super) fn check_camera_url(i: usize, url: &str) -> Result<(), ConfigError> {
    if !crate::source::is_stream_url(url) && !Path::new(url).is_absolute() {
        return Err(invalid(
            format!("cameras[{i}].url"),
            crate::source::redact(url),
            "expected a stream URL (rtsp://, rtmp://, udp://, http(s):// ...) or an absolute path (a segment folder, or a file being written)",
        ));
    }
    Ok(())
}

impl Config {
    /// Checks every section; the first error names its key.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        self.daemon.validate()?;
        self.model.validate()?;
        self.ingest.validate()?;
        check_cameras(&self.cameras)?;
        ensure(
            self.cameras.len() <= self.ingest.max_live_sources,
            "ingest.max_live_sources",
            self.ingest.max_live_sources,
            "must be at least the number of [[cameras]]",
        )?;
        let x = &self.index;
        ensure(
            (1..=4096).contains(&x.expansion_search),
            "index.expansion_search",
            x.expansion_search,
            "must be between 1 and 4096",
        )?;
        check_milvus(self)?;
        if !self.metrics.listen.is_empty() {
            crate::metrics::listener::check_address(&self.metrics.listen)
                .map_err(|reason| invalid("metrics.listen", &self.metrics.listen, &reason))?;
        }
        crate::clock::time_zone(&self.ingest.time_zone)
            .map_err(|reason| invalid("ingest.time_zone", &self.ingest.time_zone, &reason))?;
        let a = &self.alerts;
        ensure(
            a.hook_timeout > 0.0 && a.hook_timeout <= 3600.0,
            "alerts.hook_timeout",
            a.hook_timeout,
            "must be more than 0 and at most 3600 seconds",
        )?;
        ensure(
            (1..=256).contains(&a.hook_concurrency),
            "alerts.hook_concurrency",
            a.hook_concurrency,
            "must be between 1 and 256",
        )?;
        self.retention.validate()
    }
}

/// `[daemon] node` and, with `[index] backend = "milvus"`, `[milvus]` (issue 18).
fn check_milvus(c: &Config) -> Result<(), ConfigError> {
    let node = &c.daemon.node;
    ensure(
        node.len() <= 64
            && node
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-' | '_')),
        "daemon.node",
        node,
        "must be at most 64 letters, digits, '.', '-' or '_' (empty = the host name)",
    )?;
    if c.index.backend != crate::index::Backend::Milvus {
        return Ok(());
    }
    let m = &c.milvus;
    let name_ok = m.collection.len() <= 255
        && m.collection
            .starts_with(|ch: char| ch.is_ascii_alphabetic() || ch == '_')
        && m.collection
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
    ensure(
        name_ok,
        "milvus.collection",
        &m.collection,
        "must start with a letter or '_' and hold only letters, digits and '_' (Milvus's rule)",
    )?;
    ensure(
        within(m.timeout, 0.1..=600.0),
        "milvus.timeout",
        m.timeout,
        "must be between 0.1 and 600 seconds",
    )?;
    crate::milvus::http::Endpoint::parse(&m.uri, None, std::time::Duration::from_secs(1))
        .map(|_| ())
        .map_err(|e| invalid("milvus.uri", &m.uri, &e.to_string()))
}

/// `Ok` when `ok`, else the error for `key` = `value`.
fn ensure(ok: bool, key: &str, value: impl ToString, reason: &str) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(invalid(key, value, reason))
    }
}

/// True for a finite number in `range`.
fn within(v: f64, range: std::ops::RangeInclusive<f64>) -> bool {
    v.is_finite() && range.contains(&v)
}

impl DaemonConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let socket = self.socket.as_os_str();
        ensure(
            !socket.is_empty(),
            "daemon.socket",
            "\"\"",
            "must be a path",
        )?;
        ensure(
            socket.len() <= 100,
            "daemon.socket",
            self.socket.display(),
            "Unix socket paths must be shorter than 100 bytes",
        )?;
        ensure(
            !self.state_dir.as_os_str().is_empty(),
            "daemon.state_dir",
            "\"\"",
            "must be a path",
        )?;
        ensure(
            !self.footage_roots.is_empty(),
            "daemon.footage_roots",
            "[]",
            "name at least one folder the daemon may read footage from",
        )?;
        for root in &self.footage_roots {
            ensure(
                root.is_absolute(),
                "daemon.footage_roots",
                root.display(),
                "must be absolute paths",
            )?;
        }
        ensure(
            self.export_dir.as_os_str().is_empty() || self.export_dir.is_absolute(),
            "daemon.export_dir",
            self.export_dir.display(),
            "must be an absolute path (or empty for state_dir/exports)",
        )?;
        ensure(
            self.max_connections > 0,
            "daemon.max_connections",
            0,
            "must be at least 1",
        )?;
        ensure(
            self.max_request_bytes >= 1024,
            "daemon.max_request_bytes",
            self.max_request_bytes,
            "must be at least 1024",
        )?;
        ensure(
            self.idle_timeout.is_finite() && self.idle_timeout > 0.0,
            "daemon.idle_timeout",
            self.idle_timeout,
            "must be a positive number of seconds",
        )?;
        ensure(
            within(self.export_max_mb, 0.0..=f64::MAX),
            "daemon.export_max_mb",
            self.export_max_mb,
            "must be zero (no cap) or a positive number of MB",
        )?;
        ensure(
            within(self.export_reserve_mb, 0.0..=f64::MAX),
            "daemon.export_reserve_mb",
            self.export_reserve_mb,
            "must be zero or a positive number of MB",
        )?;
        ensure(
            self.max_request_bytes_total >= self.max_request_bytes,
            "daemon.max_request_bytes_total",
            self.max_request_bytes_total,
            "must be at least daemon.max_request_bytes",
        )
    }
}

impl ModelConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        ensure(
            self.batch_size <= 4096,
            "model.batch_size",
            self.batch_size,
            "must be between 1 and 4096, or 0 for automatic",
        )?;
        ensure(
            !self.path.trim().is_empty(),
            "model.path",
            "\"\"",
            "name a local model folder or a hub id",
        )?;
        Ok(())
    }
}

impl IngestConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        check_sampling(
            "ingest",
            Some(self.sample_interval),
            Some(self.scene_threshold),
            Some(self.scene_max_gap),
        )?;
        ensure(
            within(self.clip_gap, 0.0..=f64::MAX),
            "ingest.clip_gap",
            self.clip_gap,
            "must be zero or more seconds",
        )?;
        ensure(
            (1..=256).contains(&self.decode_workers),
            "ingest.decode_workers",
            self.decode_workers,
            "must be between 1 and 256",
        )?;
        ensure(
            within(self.watch_interval, 0.1..=f64::MAX),
            "ingest.watch_interval",
            self.watch_interval,
            "must be at least 0.1 seconds",
        )?;
        for w in &self.watch {
            ensure(
                w.is_absolute(),
                "ingest.watch",
                w.display(),
                "must be absolute paths",
            )?;
        }
        ensure(
            (0..=19).contains(&self.nice),
            "ingest.nice",
            self.nice,
            "must be between 0 and 19",
        )?;
        if let Some(n) = self.embed_nice {
            ensure(
                (self.nice..=19).contains(&n),
                "ingest.embed_nice",
                n,
                "must be between ingest.nice and 19 (the image tower may not outrank decoding)",
            )?;
        }
        ensure(
            within(self.resume_free_mb, 0.0..=f64::MAX),
            "ingest.resume_free_mb",
            self.resume_free_mb,
            "must be zero or more megabytes",
        )?;
        ensure(
            within(self.stall_after, 0.0..=86_400.0),
            "ingest.stall_after",
            self.stall_after,
            "must be between 0 (off) and 86400 seconds",
        )?;
        ensure(
            within(self.live_timeout, 0.5..=3600.0),
            "ingest.live_timeout",
            self.live_timeout,
            "must be between 0.5 and 3600 seconds",
        )?;
        ensure(
            within(self.reconnect_max, 0.1..=86_400.0),
            "ingest.reconnect_max",
            self.reconnect_max,
            "must be between 0.1 and 86400 seconds",
        )?;
        ensure(
            self.checkpoint_frames > 0,
            "ingest.checkpoint_frames",
            0,
            "must be at least 1",
        )?;
        for entry in &self.client_streams {
            ensure(
                crate::source::is_stream_url(entry),
                "ingest.client_streams",
                entry,
                "each entry must start with a stream URL's scheme and host, e.g. \"rtsp://10.0.0.\"",
            )?;
        }
        ensure(
            (1..=4096).contains(&self.max_live_sources),
            "ingest.max_live_sources",
            self.max_live_sources,
            "must be between 1 and 4096",
        )
    }
}

impl RetentionConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        ensure(
            within(self.max_age_days, 0.0..=f64::MAX),
            "retention.max_age_days",
            self.max_age_days,
            "must be zero (keep everything) or a positive number of days",
        )?;
        ensure(
            within(self.interval, 0.1..=f64::MAX),
            "retention.interval",
            self.interval,
            "must be at least 0.1 seconds",
        )
    }
}

#[cfg(test)]
mod milvus_tests {
    use super::super::Config;
    use crate::index::Backend;

    #[test]
    fn the_milvus_backend_and_the_node_are_checked_by_key() {
        let c = Config::from_toml_str("").unwrap();
        assert_eq!(c.index.backend, Backend::Usearch);
        assert!(c.daemon.node.is_empty() && !c.daemon.node_name().is_empty());
        assert_eq!(c.milvus.uri, "http://127.0.0.1:19530");
        let c = Config::from_toml_str(
            "[daemon]\nnode = \"gpu-3\"\n[index]\nbackend = \"milvus\"\n[milvus]\nuri = \"http://m:19530\"\ncollection = \"site_a\"\n",
        )
        .unwrap();
        assert_eq!(
            (c.index.backend, c.daemon.node_name()),
            (Backend::Milvus, "gpu-3".into())
        );
        for (toml, key) in [
            ("[index]\nbackend = \"qdrant\"\n", "index.backend"),
            ("[daemon]\nnode = \"a b\"\n", "daemon.node"),
            (
                "[index]\nbackend = \"milvus\"\n[milvus]\ncollection = \"1x\"\n",
                "milvus.collection",
            ),
            (
                "[index]\nbackend = \"milvus\"\n[milvus]\nuri = \"https://m\"\n",
                "milvus.uri",
            ),
            (
                "[index]\nbackend = \"milvus\"\n[milvus]\ntimeout = 0.0\n",
                "milvus.timeout",
            ),
        ] {
            let e = Config::from_toml_str(toml).unwrap_err().to_string();
            assert!(e.contains(key), "{toml}: {e}");
        }
        // Without the Milvus backend, [milvus] is not checked.
        assert!(Config::from_toml_str("[milvus]\nuri = \"nope\"\n").is_ok());
    }
}
