//! Configuration: the raw, validated settings the user wrote (layered from the embedded
//! defaults, `/etc/frameseek/frameseek.toml`, `--config FILE` and `FRAMESEEK__*` variables).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::decode::{HwAccel, SamplingMode};
use crate::source::live::RtspTransport;
use crate::source::{CameraConfig, SamplingDefaults};

/// The commented default configuration, compiled in.
pub const DEFAULT_CONFIG_TOML: &str = include_str!("../config/frameseek.toml");

/// System-wide configuration file, read when it exists.
pub const SYSTEM_CONFIG_PATH: &str = "/etc/frameseek/frameseek.toml";

/// Errors found while reading or validating the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A layer could not be read or parsed (the message names the key).
    #[error("cannot read configuration: {}", with_dotted_keys(&.0.to_string()))]
    Load(config::ConfigError),
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
    /// `[index]`: how the vector index stores and searches vectors.
    pub index: crate::index::IndexSettings,
    /// `[[cameras]]`: live streams and NVR folders, each with its own name and settings.
    #[serde(default)]
    pub cameras: Vec<CameraConfig>,
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
    pub sampling: SamplingMode,
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
    pub rtsp_transport: RtspTransport,
    /// Hardware decoding: `auto` (CUDA/NVDEC in a CUDA build), `cuda` or `none`.
    #[serde(default)]
    pub hwaccel: HwAccel,
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

    /// The sampling keys, which a camera may override.
    pub fn sampling_defaults(&self) -> SamplingDefaults {
        SamplingDefaults {
            sampling: self.sampling,
            interval: self.sample_interval,
            scene_threshold: self.scene_threshold,
            scene_max_gap: self.scene_max_gap,
            time_pattern: self.time_pattern.clone(),
        }
    }
}

impl Config {
    /// The camera named `name`.
    pub fn camera(&self, name: &str) -> Option<&CameraConfig> {
        self.cameras.iter().find(|c| c.name == name)
    }
}

// Not `#[from]`: that would also chain the same error as the source, and the command line
// would print its message twice.
impl From<config::ConfigError> for ConfigError {
    fn from(e: config::ConfigError) -> Self {
        Self::Load(e)
    }
}

/// The `config` crate writes the key of an array element's field as `cameras[0]sampling`;
/// this puts the dot back (`cameras[0].sampling`), as the keys are written everywhere else.
fn with_dotted_keys(message: &str) -> String {
    let mut out = String::with_capacity(message.len() + 4);
    let mut chars = message.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == ']'
            && chars
                .peek()
                .is_some_and(|n| n.is_ascii_alphabetic() || *n == '_')
        {
            out.push('.');
        }
    }
    out
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
        if !crate::source::is_stream_url(&c.url) && !Path::new(&c.url).is_absolute() {
            return Err(invalid(
                key("url"),
                &c.url,
                "expected a stream URL (rtsp://, rtmp://, udp://, http(s):// ...) or an absolute path (a segment folder, or a file being written)",
            ));
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

    /// Checks every section; the first error names its key.
    fn validate(&self) -> Result<(), ConfigError> {
        self.daemon.validate()?;
        self.model.validate()?;
        self.ingest.validate()?;
        check_cameras(&self.cameras)?;
        let x = &self.index;
        ensure(
            (1..=4096).contains(&x.expansion_search),
            "index.expansion_search",
            x.expansion_search,
            "must be between 1 and 4096",
        )?;
        self.retention.validate()
    }
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
        assert_eq!(c.ingest.hwaccel, HwAccel::Auto);
        assert_eq!(c.ingest.sample_interval, 1.0);
        assert_eq!(c.ingest.clip_gap, 2.0);
        assert_eq!(
            c.daemon.export_dir(),
            PathBuf::from("/var/lib/frameseek/exports")
        );
        assert_eq!(c.ingest.nice, 5);
        assert_eq!(c.ingest.embed_nice(), 10);
        // The documented index defaults are the code's defaults.
        assert_eq!(c.index, crate::index::IndexSettings::default());
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
        assert_eq!(c.index.precision, crate::index::IndexPrecision::I8);
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
        let gate = c.ingest.sampling_defaults().for_camera(c.camera("gate"));
        assert_eq!(gate.interval, 2.0);
        assert_eq!(
            gate.policy,
            crate::decode::SamplingPolicy::Scene {
                threshold: 0.1,
                max_gap: 30.0
            }
        );
        let nvr = c.ingest.sampling_defaults().for_camera(c.camera("nvr1"));
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
