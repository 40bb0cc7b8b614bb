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
        /// The dotted key, e.g. `ingest.sample_interval` or `cameras[2].url`.
        key: String,
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
    /// `[retention]`
    pub retention: RetentionConfig,
    /// `[index]`
    pub index: IndexConfig,
    /// `[[cameras]]`: live streams and NVR folders, each with its own name and settings.
    #[serde(default)]
    pub cameras: Vec<CameraConfig>,
}

/// `[index]`: how the vector index stores and searches vectors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexConfig {
    /// `f32`, `f16` or `i8`: bytes per dimension in the index (the raw vectors in the
    /// database stay f32). Changing it rebuilds the index at the next start.
    pub precision: String,
    /// Candidates a graph search keeps (HNSW's ef); higher finds more of the true nearest
    /// frames at a higher cost.
    pub expansion_search: usize,
}

impl IndexConfig {
    /// The index settings (after [`Config::validate`] accepted them).
    pub fn settings(&self) -> crate::index::IndexSettings {
        crate::index::IndexSettings {
            precision: crate::index::IndexPrecision::parse(&self.precision)
                .unwrap_or(crate::index::IndexPrecision::F16),
            expansion_search: self.expansion_search,
        }
    }
}

/// `[retention]`: what is removed on its own, and how often that is checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Remove frames recorded (wall clock) more than this many days ago; 0 = keep.
    pub max_age_days: f64,
    /// Keep at most this many frames per source (the newest); 0 = no limit.
    pub max_frames_per_source: u64,
    /// Seconds between retention runs (one also runs at start).
    pub interval: f64,
}

impl RetentionConfig {
    /// The policy these settings describe.
    pub fn policy(&self) -> crate::catalog::RetentionPolicy {
        crate::catalog::RetentionPolicy {
            max_age_days: (self.max_age_days > 0.0).then_some(self.max_age_days),
            max_frames_per_source: (self.max_frames_per_source > 0)
                .then_some(self.max_frames_per_source),
        }
    }
}

/// One `[[cameras]]` entry. Unset sampling keys take the `[ingest]` values.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CameraConfig {
    /// The source id users filter by (files of a camera folder: `NAME/relative/path`).
    pub name: String,
    /// A stream URL (`rtsp://`, `rtmp://`, `udp://`, `http(s)://` HLS, ...), or an absolute
    /// path: a folder the recorder writes segment files into, or a file still being written.
    pub url: String,
    /// `interval`, `keyframes` or `scene`.
    #[serde(default)]
    pub sampling: Option<String>,
    /// Seconds between sampled frames.
    #[serde(default)]
    pub sample_interval: Option<f64>,
    /// Scene policy: thumbnail change needed to keep a frame.
    #[serde(default)]
    pub scene_threshold: Option<f32>,
    /// Scene policy: seconds after which a frame is kept anyway.
    #[serde(default)]
    pub scene_max_gap: Option<f64>,
    /// Pattern finding a segment file's wall-clock time in its path.
    #[serde(default)]
    pub time_pattern: Option<String>,
}

/// The sampling settings in force for one source: a camera's own, else `[ingest]`'s.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceSettings {
    /// Seconds between samples.
    pub interval: f64,
    /// Which frames are embedded.
    pub policy: crate::decode::SamplingPolicy,
    /// Pattern finding a file's wall-clock time in its path.
    pub time_pattern: String,
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
    /// Folder `export` writes clips and thumbnails into; empty = `state_dir/exports`.
    #[serde(default)]
    pub export_dir: PathBuf,
}

impl DaemonConfig {
    /// The export folder in force: `export_dir`, or `state_dir/exports` when empty.
    pub fn export_dir(&self) -> PathBuf {
        if self.export_dir.as_os_str().is_empty() {
            self.state_dir.join("exports")
        } else {
            self.export_dir.clone()
        }
    }
}

/// `[model]`: which CLIP checkpoint and where it runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Local folder or hub id.
    pub path: String,
    /// `auto`, `cpu` or `cuda:N`.
    pub device: crate::embed::DeviceChoice,
    /// Frames per forward pass; 0 = automatic (32 on the CPU, up to 256 on a GPU).
    pub batch_size: usize,
    /// Text tower's linear-layer weights on the CPU: `f32` (the reference) or `int8`
    /// (8-bit blocks: faster queries, cosine to f32 ≥ 0.999 measured; see BENCHMARKS.md).
    #[serde(default)]
    pub text_precision: crate::embed::TextPrecision,
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
    /// Nice value (0 to 19) of the ingest threads (decode, FFmpeg, embed, the global rayon
    /// pool), so that queries are served first; 0 = same priority as queries.
    #[serde(default = "default_nice")]
    pub nice: i32,
    /// Nice value (0 to 19) of the compute pool that runs the image tower; default
    /// `nice + 5` (at most 19). Above `nice`, decoding keeps its core and the tower takes the
    /// rest, so the pipeline never runs dry (see [`IngestConfig::embed_nice`]).
    #[serde(default)]
    pub embed_nice: Option<i32>,
    /// After a full disk stopped ingest, it resumes once the state folder's file system has
    /// this many MB free again.
    pub resume_free_mb: f64,
    /// Live sources: seconds without data before a stream is declared down.
    pub live_timeout: f64,
    /// Live sources: longest wait between reconnection attempts, seconds.
    pub reconnect_max: f64,
    /// RTSP transport: `tcp` or `udp`.
    pub rtsp_transport: String,
    /// Hardware decoding: `auto` (CUDA/NVDEC in a CUDA build), `cuda` or `none`.
    #[serde(default = "default_hwaccel")]
    pub hwaccel: String,
}

fn default_hwaccel() -> String {
    "auto".into()
}

fn default_nice() -> i32 {
    5
}

/// How many nice steps the image tower's pool sits below decoding by default.
const EMBED_NICE_STEPS: i32 = 5;

impl IngestConfig {
    /// FFmpeg threads per decoded source. `decoder_threads = 0` (automatic) means FFmpeg's
    /// own choice when the image tower runs on a GPU (decoding is then the bottleneck), and
    /// on the CPU one thread per `2 × decode_workers` cores, at least one: the tower needs
    /// most of the CPU, and frame threads cost CPU of their own (one thread decoded the
    /// issue-8 video with 1.9 CPU-s, two with 2.0–2.2; BENCHMARKS.md).
    pub fn decoder_threads_for(&self, gpu: bool, cores: usize) -> usize {
        match self.decoder_threads {
            0 if gpu => 0,
            0 => (cores / (2 * self.decode_workers.max(1))).max(1),
            n => n,
        }
    }

    /// Nice value of the image tower's compute pool. The tower has work whenever frames
    /// are queued; the decoder is the producer, so it goes first: when decoding is ahead it
    /// blocks on the bounded queue and the tower gets every core, and when it is behind it
    /// keeps a full core instead of sharing it with the tower's threads (measured in
    /// BENCHMARKS.md, issue 8).
    pub fn embed_nice(&self) -> i32 {
        self.embed_nice
            .unwrap_or((self.nice + EMBED_NICE_STEPS).min(19))
    }

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

    /// The settings of a source: the camera's own where it sets them, else these.
    pub fn source_settings(&self, camera: Option<&CameraConfig>) -> SourceSettings {
        let mut merged = self.clone();
        if let Some(c) = camera {
            merged.sampling = c.sampling.clone().unwrap_or(merged.sampling);
            merged.sample_interval = c.sample_interval.unwrap_or(merged.sample_interval);
            merged.scene_threshold = c.scene_threshold.unwrap_or(merged.scene_threshold);
            merged.scene_max_gap = c.scene_max_gap.unwrap_or(merged.scene_max_gap);
            merged.time_pattern = c.time_pattern.clone().unwrap_or(merged.time_pattern);
        }
        SourceSettings {
            interval: merged.sample_interval,
            policy: merged.policy(),
            time_pattern: merged.time_pattern,
        }
    }
}

impl Config {
    /// The camera named `name`.
    pub fn camera(&self, name: &str) -> Option<&CameraConfig> {
        self.cameras.iter().find(|c| c.name == name)
    }
}

fn invalid(key: impl Into<String>, value: impl ToString, reason: &str) -> ConfigError {
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
    sampling: Option<&str>,
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
    if let Some(v) = sampling {
        if !matches!(v, "interval" | "keyframes" | "scene") {
            return Err(invalid(
                format!("{prefix}.sampling"),
                v,
                "expected interval, keyframes or scene",
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
        if !crate::live::is_stream_url(&c.url) && !Path::new(&c.url).is_absolute() {
            return Err(invalid(
                key("url"),
                &c.url,
                "expected a stream URL (rtsp://, rtmp://, udp://, http(s):// ...) or an absolute path (a segment folder, or a file being written)",
            ));
        }
        check_sampling(
            &format!("cameras[{i}]"),
            c.sampling.as_deref(),
            c.sample_interval,
            c.scene_threshold,
            c.scene_max_gap,
        )?;
    }
    Ok(())
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
                    key: "--config".into(),
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
        let i = &self.ingest;
        check_sampling(
            "ingest",
            Some(&i.sampling),
            Some(i.sample_interval),
            Some(i.scene_threshold),
            Some(i.scene_max_gap),
        )?;
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
        if !(0..=19).contains(&i.nice) {
            return Err(invalid("ingest.nice", i.nice, "must be between 0 and 19"));
        }
        if let Some(n) = i.embed_nice {
            if !(i.nice..=19).contains(&n) {
                return Err(invalid(
                    "ingest.embed_nice",
                    n,
                    "must be between ingest.nice and 19 (the image tower may not outrank decoding)",
                ));
            }
        }
        if !(i.resume_free_mb.is_finite() && i.resume_free_mb >= 0.0) {
            return Err(invalid(
                "ingest.resume_free_mb",
                i.resume_free_mb,
                "must be zero or more megabytes",
            ));
        }
        let x = &self.index;
        if let Err(e) = crate::index::IndexPrecision::parse(&x.precision) {
            return Err(invalid("index.precision", &x.precision, &e));
        }
        if !(1..=4096).contains(&x.expansion_search) {
            return Err(invalid(
                "index.expansion_search",
                x.expansion_search,
                "must be between 1 and 4096",
            ));
        }
        let r = &self.retention;
        if !(r.max_age_days.is_finite() && r.max_age_days >= 0.0) {
            return Err(invalid(
                "retention.max_age_days",
                r.max_age_days,
                "must be zero (keep everything) or a positive number of days",
            ));
        }
        if !(r.interval.is_finite() && r.interval >= 0.1) {
            return Err(invalid(
                "retention.interval",
                r.interval,
                "must be at least 0.1 seconds",
            ));
        }
        if !(i.live_timeout.is_finite() && (0.5..=3600.0).contains(&i.live_timeout)) {
            return Err(invalid(
                "ingest.live_timeout",
                i.live_timeout,
                "must be between 0.5 and 3600 seconds",
            ));
        }
        if !(i.reconnect_max.is_finite() && (0.1..=86_400.0).contains(&i.reconnect_max)) {
            return Err(invalid(
                "ingest.reconnect_max",
                i.reconnect_max,
                "must be between 0.1 and 86400 seconds",
            ));
        }
        if !matches!(i.rtsp_transport.as_str(), "tcp" | "udp") {
            return Err(invalid(
                "ingest.rtsp_transport",
                &i.rtsp_transport,
                "expected tcp or udp",
            ));
        }
        check_cameras(&self.cameras)?;
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
        crate::decode::HwAccel::parse(&i.hwaccel)
            .map_err(|reason| invalid("ingest.hwaccel", &i.hwaccel, &reason))?;
        if m.path.trim().is_empty() {
            return Err(invalid(
                "model.path",
                "\"\"",
                "name a local model folder or a hub id",
            ));
        }
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
        if !d.export_dir.as_os_str().is_empty() && !d.export_dir.is_absolute() {
            return Err(invalid(
                "daemon.export_dir",
                d.export_dir.display(),
                "must be an absolute path (or empty for state_dir/exports)",
            ));
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
        assert_eq!(c.model.device, crate::embed::DeviceChoice::Auto);
        assert_eq!(c.model.text_precision, crate::embed::TextPrecision::F32);
        assert_eq!(c.model.batch_size, 0);
        assert_eq!(c.ingest.hwaccel, "auto");
        assert_eq!(c.ingest.sample_interval, 1.0);
        assert_eq!(c.ingest.clip_gap, 2.0);
        assert_eq!(
            c.daemon.export_dir(),
            PathBuf::from("/var/lib/frameseek/exports")
        );
        assert_eq!(c.ingest.nice, 5);
        assert_eq!(c.ingest.embed_nice(), 10);
        // The documented index defaults are the code's defaults.
        assert_eq!(c.index.settings(), crate::index::IndexSettings::default());
        // Automatic decoder threads: FFmpeg's choice on a GPU, a share of the cores on the CPU.
        assert_eq!(c.ingest.decoder_threads_for(true, 16), 0);
        assert_eq!(c.ingest.decoder_threads_for(false, 2), 1);
        assert_eq!(c.ingest.decoder_threads_for(false, 16), 4);
        let c = Config::from_toml_str("[ingest]\ndecoder_threads = 3\n").unwrap();
        assert_eq!(c.ingest.decoder_threads_for(false, 2), 3);
        let c = Config::from_toml_str("[ingest]\nnice = 17\n").unwrap();
        assert_eq!(c.ingest.embed_nice(), 19);
        let c = Config::from_toml_str("[ingest]\nembed_nice = 5\n").unwrap();
        assert_eq!(c.ingest.embed_nice(), 5);
        let e = Config::from_toml_str("[ingest]\nnice = 6\nembed_nice = 5\n").unwrap_err();
        assert!(e.to_string().contains("ingest.embed_nice"), "{e}");
        let c = Config::from_toml_str("[daemon]\nexport_dir = \"/srv/exports\"\n").unwrap();
        assert_eq!(c.daemon.export_dir(), PathBuf::from("/srv/exports"));
        let e = Config::from_toml_str("[daemon]\nexport_dir = \"out\"\n").unwrap_err();
        assert!(e.to_string().contains("daemon.export_dir"), "{e}");
        let e = Config::from_toml_str("[ingest]\nnice = 20\n").unwrap_err();
        assert!(e.to_string().contains("ingest.nice"), "{e}");
        assert_eq!(c.retention.max_age_days, 0.0);
        assert_eq!(c.retention.max_frames_per_source, 0);
        assert!(!c.retention.policy().is_active());
        let c = Config::from_toml_str("[retention]\nmax_age_days = 30\n").unwrap();
        assert_eq!(c.retention.policy().max_age_days, Some(30.0));
        let e = Config::from_toml_str("[retention]\nmax_age_days = -1\n").unwrap_err();
        assert!(e.to_string().contains("retention.max_age_days"), "{e}");
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
        let c = Config::from_toml_str("[model]\ntext_precision = \"int8\"\n").unwrap();
        assert_eq!(c.model.text_precision, crate::embed::TextPrecision::Int8);
        let e = Config::from_toml_str("[index]\nprecision = \"f8\"\n").unwrap_err();
        assert!(e.to_string().contains("index.precision"), "{e}");
        let e = Config::from_toml_str("[index]\nexpansion_search = 0\n").unwrap_err();
        assert!(e.to_string().contains("index.expansion_search"), "{e}");
        let c = Config::from_toml_str("[index]\nprecision = \"i8\"\n").unwrap();
        assert_eq!(
            c.index.settings().precision,
            crate::index::IndexPrecision::I8
        );
        let e = Config::from_toml_str("[model]\ndevice = \"tpu\"\n").unwrap_err();
        assert!(e.to_string().contains("model.device"), "{e}");
        assert!(e.to_string().contains("auto, cpu or cuda:N"), "{e}");
        let c = Config::from_toml_str("[model]\ndevice = \"cuda:1\"\n").unwrap();
        assert_eq!(c.model.device, crate::embed::DeviceChoice::Cuda(1));
        let e = Config::from_toml_str("[daemon]\nfootage_roots = [\"relative\"]\n").unwrap_err();
        assert!(e.to_string().contains("footage_roots"), "{e}");
    }

    #[test]
    fn cameras_override_the_ingest_defaults_and_are_validated_by_key() {
        let c = Config::from_toml_str(
            "[ingest]\nsample_interval = 2.0\n\n[[cameras]]\nname = \"gate\"\nurl = \"rtsp://10.0.0.5/main\"\nsampling = \"scene\"\nscene_threshold = 0.1\n\n[[cameras]]\nname = \"nvr1\"\nurl = \"/srv/footage/nvr1\"\nsample_interval = 0.5\ntime_pattern = \"%Y-%m-%d/%H-%M-%S\"\n",
        )
        .unwrap();
        let gate = c.ingest.source_settings(c.camera("gate"));
        assert_eq!(gate.interval, 2.0);
        assert_eq!(
            gate.policy,
            crate::decode::SamplingPolicy::Scene {
                threshold: 0.1,
                max_gap: 30.0
            }
        );
        let nvr = c.ingest.source_settings(c.camera("nvr1"));
        assert_eq!(nvr.interval, 0.5);
        assert_eq!(nvr.policy, crate::decode::SamplingPolicy::Interval);
        assert_eq!(nvr.time_pattern, "%Y-%m-%d/%H-%M-%S");
        for (toml, key) in [
            ("name = \"a\"\nurl = \"ftp://x\"", "cameras[0].url"),
            ("name = \"a\"\nurl = \"relative/dir\"", "cameras[0].url"),
            ("name = \"\"\nurl = \"udp://1.2.3.4:5\"", "cameras[0].name"),
            ("name = \"a*\"\nurl = \"udp://1.2.3.4:5\"", "cameras[0].name"),
            (
                "name = \"a\"\nurl = \"udp://1.2.3.4:5\"\nsample_interval = 0.0",
                "cameras[0].sample_interval",
            ),
            (
                "name = \"a\"\nurl = \"udp://1.2.3.4:5\"\nsampling = \"all\"",
                "cameras[0].sampling",
            ),
            (
                "name = \"a\"\nurl = \"udp://1.2.3.4:5\"\n[[cameras]]\nname = \"a\"\nurl = \"udp://1.2.3.4:6\"",
                "cameras[1].name",
            ),
        ] {
            let e = Config::from_toml_str(&format!("[[cameras]]\n{toml}\n")).unwrap_err();
            assert!(e.to_string().contains(key), "{toml}: {e}");
        }
        let e = Config::from_toml_str("[[cameras]]\nname = \"a\"\nurl = \"udp://h:1\"\nfps = 2\n")
            .unwrap_err();
        assert!(e.to_string().contains("fps"), "{e}");
        let e = Config::from_toml_str("[ingest]\nrtsp_transport = \"sctp\"\n").unwrap_err();
        assert!(e.to_string().contains("ingest.rtsp_transport"), "{e}");
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
        assert_eq!(c.model.text_precision, crate::embed::TextPrecision::F32);
        assert_eq!(c.daemon.socket, PathBuf::from("/tmp/a.sock"));
        let missing =
            Config::load_with(Some(&dir.path().join("nope.toml")), None, false).unwrap_err();
        assert!(missing.to_string().contains("nope.toml"));
    }
}
