//! Configuration: the raw, validated settings the user wrote (layered from the embedded
//! defaults, `/etc/frameseek/frameseek.toml`, `--config FILE` and `FRAMESEEK__*` variables).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::decode::{HwAccel, SamplingMode};
use crate::source::live::RtspTransport;
use crate::source::{CameraConfig, SamplingDefaults};

mod layers;
mod validate;

pub use layers::{
    explain, world_readable_secrets, world_readable_url_files, ExplainedSetting, ExposedSecret,
    Layer,
};

/// The commented default configuration, compiled in.
pub const DEFAULT_CONFIG_TOML: &str = include_str!("../../config/frameseek.toml");

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
    /// `[milvus]`: the shared vector engine, used with `[index] backend = "milvus"`.
    #[serde(default)]
    pub milvus: crate::milvus::MilvusSettings,
    /// `[alerts]`: what alerts' exec hooks may run, and how.
    pub alerts: crate::alert::AlertSettings,
    /// `[[cameras]]`: live streams and NVR folders, each with its own name and settings.
    #[serde(default)]
    pub cameras: Vec<CameraConfig>,
    /// `[metrics]`: the optional Prometheus listener.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// `[log]`: how the daemon writes its log.
    #[serde(default)]
    pub log: LogConfig,
}

/// `[metrics]`: the optional Prometheus listener (off by default).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Loopback address and port serving `GET /metrics` (`127.0.0.1:9464`); empty = off.
    #[serde(default)]
    pub listen: String,
}

/// `[log]`: how the daemon writes its log.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` (the default) or `json` (one object per line); `FRAMESEEK_LOG_FORMAT`
    /// overrides it.
    #[serde(default)]
    pub format: LogFormat,
}

/// The daemon's log format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
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
    /// Most MB the export folder may hold; an export that would pass it is refused. 0 = no
    /// cap.
    pub export_max_mb: f64,
    /// MB that must stay free on the export folder's file system after an export.
    pub export_reserve_mb: f64,
    /// Request bytes buffered at once by all connections together.
    pub max_request_bytes_total: usize,
    /// This server's name among the nodes sharing one vector engine; empty = the host name.
    #[serde(default)]
    pub node: String,
}

impl DaemonConfig {
    /// This server's node name: `node`, or the host name when empty.
    pub fn node_name(&self) -> String {
        if !self.node.is_empty() {
            return self.node.clone();
        }
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it
        // when the name fits, and the last byte stays 0 otherwise.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) };
        let len = buf.iter().position(|&b| b == 0).unwrap_or(0);
        match std::str::from_utf8(&buf[..len]) {
            Ok(name) if rc == 0 && !name.is_empty() => name.to_string(),
            _ => "localhost".to_string(),
        }
    }

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
    /// Text tower's linear-layer weights on the CPU: `int8` (the default; 8-bit blocks:
    /// faster queries and less memory, cosine to f32 ≥ 0.999 measured; see BENCHMARKS.md)
    /// or `f32` (the reference).
    #[serde(default)]
    pub text_precision: crate::embed::TextPrecision,
    /// Image tower's linear layers on the CPU: `int8` (the default; on a CPU with AVX-512
    /// VNNI or AVX-VNNI: per-channel int8, cosine to f32 ≥ 0.999 measured, see
    /// BENCHMARKS.md) or `f32`.
    #[serde(default)]
    pub image_precision: crate::embed::ImagePrecision,
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
    /// Which views of each sampled frame are embedded: `cover`, `pad`, `cover+tiles` or
    /// `centre` (issue 16).
    pub views: crate::embed::ViewSet,
    /// Scene policy: thumbnail change needed to keep a frame (0 to 1).
    pub scene_threshold: f32,
    /// Scene policy: seconds after which a frame is kept anyway.
    pub scene_max_gap: f64,
    /// Pattern finding a file's wall-clock time in its path; empty for none.
    pub time_pattern: String,
    /// IANA time zone the times in file names (`time_pattern`) are in, e.g.
    /// `Europe/Paris`; empty = the system's local zone.
    #[serde(default)]
    pub time_zone: String,
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
    /// Seconds a decode worker may read nothing from its file before it is reported hung
    /// (0: never).
    pub stall_after: f64,
    /// Live sources: seconds without data before a stream is declared down.
    pub live_timeout: f64,
    /// Live sources: longest wait between reconnection attempts, seconds.
    pub reconnect_max: f64,
    /// RTSP transport: `tcp` or `udp`.
    pub rtsp_transport: RtspTransport,
    /// Hardware decoding: `auto` (CUDA/NVDEC in a CUDA build), `cuda` or `none`.
    #[serde(default)]
    pub hwaccel: HwAccel,
    /// Stream URLs socket clients may add with `ingest` (prefixes, `*` within a name);
    /// empty: streams come only from `[[cameras]]`.
    pub client_streams: Vec<String>,
    /// Most live sources (streams, cameras, followed files) read at once.
    pub max_live_sources: usize,
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
            // Validated at load: an unknown name never gets here.
            time_zone: crate::clock::time_zone(&self.time_zone).unwrap_or(jiff::tz::TimeZone::UTC),
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

/// The environment layer: `FRAMESEEK__SECTION__KEY`, lists comma-separated.
fn environment() -> config::Environment {
    config::Environment::with_prefix("FRAMESEEK")
        .prefix_separator("__")
        .separator("__")
        .list_separator(",")
        .with_list_parse_key("daemon.footage_roots")
        .with_list_parse_key("ingest.watch")
        .try_parsing(true)
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
        use config::{File, FileFormat};
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
            builder = builder.add_source(environment());
        }
        let config: Config = builder.build()?.try_deserialize()?;
        config.validate()?;
        Ok(config)
    }

    /// Reads every camera's URL from its `url_file` or `url_credential`
    /// (`$CREDENTIALS_DIRECTORY/NAME`) and checks its form. The daemon calls it at start;
    /// clients never need the secrets.
    pub fn resolve_camera_urls(&mut self) -> Result<(), ConfigError> {
        let credentials = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
        for (i, c) in self.cameras.iter_mut().enumerate() {
            let origin = c.url_origins().join(",");
            c.resolve_url(credentials.as_deref())
                .map_err(|e| ConfigError::Invalid {
                    key: format!("cameras[{i}].{origin}"),
                    value: c
                        .url_file
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .or_else(|| c.url_credential.clone())
                        .unwrap_or_default(),
                    reason: e.to_string(),
                })?;
            validate::check_camera_url(i, &c.url)?;
        }
        Ok(())
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
        assert_eq!(c.model.text_precision, crate::embed::TextPrecision::Int8);
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
    fn alert_settings_default_to_no_hooks_and_are_checked_by_key() {
        let c = Config::from_toml_str("").unwrap();
        assert!(c.alerts.exec_dirs.is_empty());
        assert_eq!(
            (c.alerts.hook_timeout, c.alerts.hook_concurrency),
            (10.0, 4)
        );
        let c =
            Config::from_toml_str("[alerts]\nexec_dirs = [\"/etc/frameseek/hooks\"]\n").unwrap();
        assert_eq!(
            c.alerts.exec_dirs,
            vec![PathBuf::from("/etc/frameseek/hooks")]
        );
        let e = Config::from_toml_str("[alerts]\nhook_timeout = 0\n").unwrap_err();
        assert!(e.to_string().contains("alerts.hook_timeout"), "{e}");
        let e = Config::from_toml_str("[alerts]\nhook_concurrency = 0\n").unwrap_err();
        assert!(e.to_string().contains("alerts.hook_concurrency"), "{e}");
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
        let e = Config::from_toml_str("[model]\nimage_precision = \"int4\"\n").unwrap_err();
        assert!(e.to_string().contains("model.image_precision"), "{e}");
        let c = Config::from_toml_str("[model]\nimage_precision = \"f32\"\n").unwrap();
        assert_eq!(c.model.image_precision, crate::embed::ImagePrecision::F32);
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
        let e = Config::from_toml_str("[metrics]\nlisten = \"0.0.0.0:9464\"\n").unwrap_err();
        assert!(e.to_string().contains("metrics.listen"), "{e}");
        assert!(e.to_string().contains("not a loopback address"), "{e}");
        let c = Config::from_toml_str("[metrics]\nlisten = \"127.0.0.1:9464\"\n").unwrap();
        assert_eq!(c.metrics.listen, "127.0.0.1:9464");
        assert!(Config::from_toml_str("").unwrap().metrics.listen.is_empty());
        let e = Config::from_toml_str("[ingest]\ntime_zone = \"Mars/Base\"\n").unwrap_err();
        assert!(e.to_string().contains("ingest.time_zone"), "{e}");
        let e = Config::from_toml_str("[log]\nformat = \"xml\"\n").unwrap_err();
        assert!(e.to_string().contains("log.format"), "{e}");
        let c = Config::from_toml_str("[log]\nformat = \"json\"\n").unwrap();
        assert_eq!(c.log.format, LogFormat::Json);
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
        for (toml, key) in [
            (
                "[ingest]\nclient_streams = [\"/srv/x\"]",
                "ingest.client_streams",
            ),
            ("[ingest]\nmax_live_sources = 0", "ingest.max_live_sources"),
            ("[daemon]\nexport_max_mb = -1", "daemon.export_max_mb"),
            (
                "[daemon]\nexport_reserve_mb = -1",
                "daemon.export_reserve_mb",
            ),
        ] {
            let e = Config::from_toml_str(toml).unwrap_err();
            assert!(e.to_string().contains(key), "{toml}: {e}");
        }
        let c = Config::from_toml_str("").unwrap();
        assert!(c.ingest.client_streams.is_empty());
        assert_eq!(c.ingest.max_live_sources, 64);
        assert_eq!(c.daemon.export_max_mb, 10240.0);
        assert_eq!(c.daemon.export_reserve_mb, 256.0);
        assert_eq!(c.daemon.max_request_bytes_total, 67_108_864);
        let c = Config::from_toml_str(
            "[ingest]\nclient_streams = [\"rtsp://10.0.0.\"]\nmax_live_sources = 2\n",
        )
        .unwrap();
        assert_eq!(c.ingest.client_streams, ["rtsp://10.0.0."]);
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
        assert_eq!(c.model.text_precision, crate::embed::TextPrecision::Int8);
        assert_eq!(c.daemon.socket, PathBuf::from("/tmp/a.sock"));
        let missing =
            Config::load_with(Some(&dir.path().join("nope.toml")), None, false).unwrap_err();
        assert!(missing.to_string().contains("nope.toml"));
    }
}
