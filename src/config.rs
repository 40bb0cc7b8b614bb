//! Configuration: the raw, validated settings the user wrote (layered from the embedded
//! defaults, `/etc/frameseek/frameseek.toml`, `--config FILE` and `FRAMESEEK__*` variables).

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The commented default configuration, compiled in.
pub const DEFAULT_CONFIG_TOML: &str = include_str!("../config/frameseek.toml");

/// System-wide configuration file, read when it exists.
pub const SYSTEM_CONFIG_PATH: &str = "/etc/frameseek/frameseek.toml";

/// Errors found while reading or validating the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A layer could not be read or parsed.
    #[error("cannot read configuration: {0}")]
    Load(#[from] config::ConfigError),
    /// A value is out of range or inconsistent.
    #[error("invalid configuration: {key} = {value}: {reason}")]
    Invalid {
        /// The dotted key, e.g. `ingest.sample_interval`.
        key: &'static str,
        /// The offending value as written.
        value: String,
        /// What is wrong and what to do.
        reason: String,
    },
}

/// All settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[daemon]`
    pub daemon: DaemonConfig,
    /// `[model]`
    pub model: ModelConfig,
    /// `[ingest]`
    pub ingest: IngestConfig,
}

/// `[daemon]`: where the daemon listens and keeps its state.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// Unix socket path.
    pub socket: PathBuf,
    /// Folder holding the database and the index.
    pub state_dir: PathBuf,
    /// Folders the daemon may read footage from.
    pub footage_roots: Vec<PathBuf>,
    /// Group owning the socket; empty for the daemon's own group.
    pub socket_group: String,
    /// Connections served at once.
    pub max_connections: usize,
    /// Longest accepted request line in bytes.
    pub max_request_bytes: usize,
    /// Seconds of silence before a connection is closed.
    pub idle_timeout: f64,
}

/// `[model]`: which CLIP checkpoint and where it runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Local folder or hub id.
    pub path: String,
    /// `auto`, `cpu` or `cuda:N`.
    pub device: String,
    /// Frames per forward pass; 0 = automatic (32 on the CPU, up to 256 on a GPU).
    pub batch_size: usize,
    /// Text tower's linear-layer weights on the CPU: `f32` (the reference) or `int8`
    /// (8-bit blocks: faster queries, cosine to f32 ≥ 0.999 measured; see BENCHMARKS.md).
    #[serde(default = "default_text_precision")]
    pub text_precision: String,
}

fn default_text_precision() -> String {
    "f32".into()
}

impl ModelConfig {
    /// The text tower's [`crate::embed::Precision`] (validated at load).
    pub fn text_precision(&self) -> crate::embed::Precision {
        match self.text_precision.as_str() {
            "int8" => crate::embed::Precision::Int8,
            _ => crate::embed::Precision::Auto,
        }
    }
}

/// `[ingest]`: how footage is sampled and grouped.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// Seconds between sampled frames.
    pub sample_interval: f64,
    /// Seconds; neighbouring hits closer than this form one clip.
    pub clip_gap: f64,
    /// Sources decoded concurrently.
    pub decode_workers: usize,
    /// FFmpeg decoder threads per source, 0 = automatic.
    pub decoder_threads: usize,
    /// New frames between index checkpoints.
    pub checkpoint_frames: usize,
    /// `interval`, `keyframes` or `scene`.
    pub sampling: String,
    /// Scene policy: thumbnail change needed to keep a frame (0 to 1).
    pub scene_threshold: f32,
    /// Scene policy: seconds after which a frame is kept anyway.
    pub scene_max_gap: f64,
    /// Pattern finding a file's wall-clock time in its path; empty for none.
    pub time_pattern: String,
    /// Folders watched for new footage.
    pub watch: Vec<PathBuf>,
    /// Seconds between scans of the watched folders.
    pub watch_interval: f64,
    /// Hardware decoding: `auto` (CUDA/NVDEC in a CUDA build), `cuda` or `none`.
    #[serde(default = "default_hwaccel")]
    pub hwaccel: String,
}

fn default_hwaccel() -> String {
    "auto".into()
}

impl IngestConfig {
    /// The sampling policy these settings describe.
    pub fn policy(&self) -> crate::decode::SamplingPolicy {
        use crate::decode::SamplingPolicy;
        match self.sampling.as_str() {
            "keyframes" => SamplingPolicy::Keyframes,
            "scene" => SamplingPolicy::Scene {
                threshold: self.scene_threshold,
                max_gap: self.scene_max_gap,
            },
            _ => SamplingPolicy::Interval,
        }
    }
}

impl Config {
    /// Loads the layers in order: defaults, `/etc`, `file` (when given), environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with(file, Some(Path::new(SYSTEM_CONFIG_PATH)), true)
    }

    /// Loads the layers with an explicit system file and a switch for the environment
    /// layer; `load` is this with the production values.
    pub fn load_with(
        file: Option<&Path>,
        system_file: Option<&Path>,
        use_env: bool,
    ) -> Result<Config, ConfigError> {
        use config::{Environment, File, FileFormat};
        let mut builder = config::Config::builder()
            .add_source(File::from_str(DEFAULT_CONFIG_TOML, FileFormat::Toml));
        if let Some(system) = system_file {
            builder =
                builder.add_source(File::from(system).format(FileFormat::Toml).required(false));
        }
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::Invalid {
                    key: "--config",
                    value: file.display().to_string(),
                    reason: "no such file".into(),
                });
            }
            builder = builder.add_source(File::from(file).format(FileFormat::Toml).required(true));
        }
        if use_env {
            builder = builder.add_source(
                Environment::with_prefix("FRAMESEEK")
                    .prefix_separator("__")
                    .separator("__")
                    .list_separator(",")
                    .with_list_parse_key("daemon.footage_roots")
                    .with_list_parse_key("ingest.watch")
                    .try_parsing(true),
            );
        }
        let config: Config = builder.build()?.try_deserialize()?;
        config.validate()?;
        Ok(config)
    }

    /// Parses one TOML text over the defaults (no `/etc`, no environment); for tests and tools.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        use config::{File, FileFormat};
        let config: Config = config::Config::builder()
            .add_source(File::from_str(DEFAULT_CONFIG_TOML, FileFormat::Toml))
            .add_source(File::from_str(text, FileFormat::Toml))
            .build()?
            .try_deserialize()?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        fn invalid(key: &'static str, value: impl ToString, reason: &str) -> ConfigError {
            ConfigError::Invalid {
                key,
                value: value.to_string(),
                reason: reason.to_string(),
            }
        }
        let i = &self.ingest;
        if !(i.sample_interval.is_finite()
            && i.sample_interval >= 0.01
            && i.sample_interval <= 86_400.0)
        {
            return Err(invalid(
                "ingest.sample_interval",
                i.sample_interval,
                "must be between 0.01 and 86400 seconds",
            ));
        }
        if !(i.clip_gap.is_finite() && i.clip_gap >= 0.0) {
            return Err(invalid(
                "ingest.clip_gap",
                i.clip_gap,
                "must be zero or more seconds",
            ));
        }
        if i.decode_workers == 0 || i.decode_workers > 256 {
            return Err(invalid(
                "ingest.decode_workers",
                i.decode_workers,
                "must be between 1 and 256",
            ));
        }
        if !matches!(i.sampling.as_str(), "interval" | "keyframes" | "scene") {
            return Err(invalid(
                "ingest.sampling",
                &i.sampling,
                "expected interval, keyframes or scene",
            ));
        }
        if !(i.scene_threshold.is_finite() && (0.0..=1.0).contains(&i.scene_threshold)) {
            return Err(invalid(
                "ingest.scene_threshold",
                i.scene_threshold,
                "must be between 0 and 1",
            ));
        }
        if !(i.scene_max_gap.is_finite() && i.scene_max_gap > 0.0) {
            return Err(invalid(
                "ingest.scene_max_gap",
                i.scene_max_gap,
                "must be a positive number of seconds",
            ));
        }
        if !(i.watch_interval.is_finite() && i.watch_interval >= 0.1) {
            return Err(invalid(
                "ingest.watch_interval",
                i.watch_interval,
                "must be at least 0.1 seconds",
            ));
        }
        for w in &i.watch {
            if !w.is_absolute() {
                return Err(invalid(
                    "ingest.watch",
                    w.display(),
                    "must be absolute paths",
                ));
            }
        }
        if i.checkpoint_frames == 0 {
            return Err(invalid("ingest.checkpoint_frames", 0, "must be at least 1"));
        }
        let m = &self.model;
        if m.batch_size > 4096 {
            return Err(invalid(
                "model.batch_size",
                m.batch_size,
                "must be between 1 and 4096, or 0 for automatic",
            ));
        }
        if !matches!(m.text_precision.as_str(), "f32" | "int8") {
            return Err(invalid(
                "model.text_precision",
                &m.text_precision,
                "expected f32 or int8",
            ));
        }
        crate::decode::HwAccel::parse(&i.hwaccel)
            .map_err(|reason| invalid("ingest.hwaccel", &i.hwaccel, &reason))?;
        if m.path.trim().is_empty() {
            return Err(invalid(
                "model.path",
                "\"\"",
                "name a local model folder or a hub id",
            ));
        }
        crate::embed::DeviceChoice::parse(&m.device)
            .map_err(|reason| invalid("model.device", &m.device, &reason))?;
        let d = &self.daemon;
        if d.socket.as_os_str().is_empty() {
            return Err(invalid("daemon.socket", "\"\"", "must be a path"));
        }
        if d.socket.as_os_str().len() > 100 {
            return Err(invalid(
                "daemon.socket",
                d.socket.display(),
                "Unix socket paths must be shorter than 100 bytes",
            ));
        }
        if d.state_dir.as_os_str().is_empty() {
            return Err(invalid("daemon.state_dir", "\"\"", "must be a path"));
        }
        if d.footage_roots.is_empty() {
            return Err(invalid(
                "daemon.footage_roots",
                "[]",
                "name at least one folder the daemon may read footage from",
            ));
        }
        for root in &d.footage_roots {
            if !root.is_absolute() {
                return Err(invalid(
                    "daemon.footage_roots",
                    root.display(),
                    "must be absolute paths",
                ));
            }
        }
        if d.max_connections == 0 {
            return Err(invalid("daemon.max_connections", 0, "must be at least 1"));
        }
        if d.max_request_bytes < 1024 {
            return Err(invalid(
                "daemon.max_request_bytes",
                d.max_request_bytes,
                "must be at least 1024",
            ));
        }
        if !(d.idle_timeout.is_finite() && d.idle_timeout > 0.0) {
            return Err(invalid(
                "daemon.idle_timeout",
                d.idle_timeout,
                "must be a positive number of seconds",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_parses_and_matches_the_documented_contract() {
        let c = Config::from_toml_str("").unwrap();
        assert_eq!(
            c.daemon.socket,
            PathBuf::from("/run/frameseek/frameseek.sock")
        );
        assert_eq!(c.daemon.state_dir, PathBuf::from("/var/lib/frameseek"));
        assert_eq!(c.daemon.footage_roots, vec![PathBuf::from("/srv/footage")]);
        assert_eq!(c.model.path, "openai/clip-vit-base-patch32");
        assert_eq!(c.model.device, "auto");
        assert_eq!(c.model.batch_size, 0);
        assert_eq!(c.ingest.hwaccel, "auto");
        assert_eq!(c.ingest.sample_interval, 1.0);
        assert_eq!(c.ingest.clip_gap, 2.0);
    }

    #[test]
    fn a_file_layer_overrides_defaults() {
        let c = Config::from_toml_str("[ingest]\nsample_interval = 0.5\n").unwrap();
        assert_eq!(c.ingest.sample_interval, 0.5);
        assert_eq!(c.model.batch_size, 0);
    }

    #[test]
    fn invalid_values_name_the_key() {
        let e = Config::from_toml_str("[ingest]\nsample_interval = 0.0\n").unwrap_err();
        assert!(e.to_string().contains("ingest.sample_interval"), "{e}");
        let e = Config::from_toml_str("[ingest]\nhwaccel = \"vaapi\"\n").unwrap_err();
        assert!(e.to_string().contains("ingest.hwaccel"), "{e}");
        let e = Config::from_toml_str("[model]\ntext_precision = \"int4\"\n").unwrap_err();
        assert!(e.to_string().contains("model.text_precision"), "{e}");
        assert!(e.to_string().contains("f32 or int8"), "{e}");
        let e = Config::from_toml_str("[model]\ndevice = \"tpu\"\n").unwrap_err();
        assert!(e.to_string().contains("model.device"), "{e}");
        let e = Config::from_toml_str("[daemon]\nfootage_roots = [\"relative\"]\n").unwrap_err();
        assert!(e.to_string().contains("footage_roots"), "{e}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = Config::from_toml_str("[ingest]\nsample_intervl = 2.0\n").unwrap_err();
        assert!(e.to_string().contains("sample_intervl"), "{e}");
    }

    #[test]
    fn config_file_then_environment_layering() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f.toml");
        std::fs::write(
            &file,
            "[model]\nbatch_size = 8\n[daemon]\nsocket = \"/tmp/a.sock\"\n",
        )
        .unwrap();
        let c = Config::load_with(Some(&file), None, false).unwrap();
        assert_eq!(c.model.batch_size, 8);
        assert_eq!(c.model.text_precision, "f32");
        assert_eq!(c.daemon.socket, PathBuf::from("/tmp/a.sock"));
        let missing =
            Config::load_with(Some(&dir.path().join("nope.toml")), None, false).unwrap_err();
        assert!(missing.to_string().contains("nope.toml"));
    }
}
