//! Cameras (`[[cameras]]`): named live streams, files still being written, or folders a
//! recorder writes segments into, each with its own sampling; and the one place where a
//! camera's settings are merged over the `[ingest]` defaults.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::decode::{SamplingMode, SourceSettings};

/// One `[[cameras]]` entry. Unset sampling keys take the `[ingest]` values.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CameraConfig {
    /// The source id users filter by (files of a camera folder: `NAME/relative/path`).
    pub name: String,
    /// A stream URL (`rtsp://`, `rtmp://`, `udp://`, `http(s)://` HLS, ...), or an absolute
    /// path: a folder the recorder writes segment files into, or a file still being written.
    /// Empty when `url_file` or `url_credential` gives it; filled in by
    /// [`CameraConfig::resolve_url`].
    #[serde(default)]
    pub url: String,
    /// A file whose content (trimmed) is the URL: keeps a password out of the main file.
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    /// A systemd credential (`LoadCredential=NAME:…`) whose content is the URL, read from
    /// `$CREDENTIALS_DIRECTORY/NAME`.
    #[serde(default)]
    pub url_credential: Option<String>,
    /// `interval`, `keyframes` or `scene`.
    #[serde(default)]
    pub sampling: Option<SamplingMode>,
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
    /// IANA time zone of the times in this camera's file names, for a recorder in another
    /// zone than `ingest.time_zone`.
    #[serde(default)]
    pub time_zone: Option<String>,
}

/// Why a camera's URL could not be read from its `url_file` or `url_credential`.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file cannot be read.
    #[error(
        "cannot read {path}: {source}; check that it exists and that the daemon's user may read it"
    )]
    Unreadable {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is empty (after trimming).
    #[error("{0} is empty; write the camera's URL into it")]
    Empty(String),
    /// `url_credential` is set but systemd passed no credentials.
    #[error("CREDENTIALS_DIRECTORY is not set: add `LoadCredential={0}:/path/to/file` to the unit (docs/OPERATIONS.md, \"Secrets\"), or use url_file")]
    NoCredentials(String),
}

impl CameraConfig {
    /// Where the URL comes from, as the configuration says it: `url`, `url_file` or
    /// `url_credential` (validation checks that exactly one is set).
    pub fn url_origins(&self) -> Vec<&'static str> {
        let mut set = Vec::new();
        if !self.url.is_empty() {
            set.push("url");
        }
        if self.url_file.is_some() {
            set.push("url_file");
        }
        if self.url_credential.is_some() {
            set.push("url_credential");
        }
        set
    }

    /// Reads the URL from `url_file` or `url_credential` into `url` (trimmed); an inline
    /// `url` is kept as it is. `credentials_dir` is `$CREDENTIALS_DIRECTORY`.
    pub fn resolve_url(&mut self, credentials_dir: Option<&Path>) -> Result<(), SecretError> {
        let path = match (&self.url_file, &self.url_credential) {
            (Some(file), _) => file.clone(),
            (None, Some(name)) => credentials_dir
                .ok_or_else(|| SecretError::NoCredentials(name.clone()))?
                .join(name),
            (None, None) => return Ok(()),
        };
        let text = std::fs::read_to_string(&path).map_err(|source| SecretError::Unreadable {
            path: path.display().to_string(),
            source,
        })?;
        let url = text.trim();
        if url.is_empty() {
            return Err(SecretError::Empty(path.display().to_string()));
        }
        self.url = url.to_string();
        Ok(())
    }
}

/// The daemon-wide sampling settings (`[ingest]`), which a camera may override key by key.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingDefaults {
    /// Which frames are embedded.
    pub sampling: SamplingMode,
    /// Seconds between samples.
    pub interval: f64,
    /// Scene policy: thumbnail change needed to keep a frame.
    pub scene_threshold: f32,
    /// Scene policy: seconds after which a frame is kept anyway.
    pub scene_max_gap: f64,
    /// Pattern finding a file's wall-clock time in its path; empty for none.
    pub time_pattern: String,
    /// The time zone of the times in file names (`ingest.time_zone`; a camera's own
    /// `time_zone` wins).
    pub time_zone: jiff::tz::TimeZone,
}

impl SamplingDefaults {
    /// The settings of a source: the camera's own keys where it sets them, else these.
    pub fn for_camera(&self, camera: Option<&CameraConfig>) -> SourceSettings {
        let pick = |own: Option<f64>, default: f64| own.unwrap_or(default);
        let (sampling, interval, threshold, max_gap, pattern) = match camera {
            Some(c) => (
                c.sampling.unwrap_or(self.sampling),
                pick(c.sample_interval, self.interval),
                c.scene_threshold.unwrap_or(self.scene_threshold),
                pick(c.scene_max_gap, self.scene_max_gap),
                c.time_pattern
                    .clone()
                    .unwrap_or_else(|| self.time_pattern.clone()),
            ),
            None => (
                self.sampling,
                self.interval,
                self.scene_threshold,
                self.scene_max_gap,
                self.time_pattern.clone(),
            ),
        };
        // Validation refused a camera zone that does not resolve.
        let time_zone = camera
            .and_then(|c| c.time_zone.as_deref())
            .and_then(|name| crate::clock::time_zone(name).ok())
            .unwrap_or_else(|| self.time_zone.clone());
        SourceSettings {
            interval,
            policy: sampling.policy(threshold, max_gap),
            time_pattern: pattern,
            time_zone,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn a_camera_s_own_time_zone_wins_over_the_ingest_one() {
        let c = Config::from_toml_str(
            "[ingest]\ntime_zone = \"America/New_York\"\n\n[[cameras]]\nname = \"paris\"\nurl = \"/srv/nvr/paris\"\ntime_zone = \"Europe/Paris\"\n\n[[cameras]]\nname = \"local\"\nurl = \"/srv/nvr/local\"\n",
        )
        .unwrap();
        let defaults = c.ingest.sampling_defaults();
        let zone = |camera| {
            defaults
                .for_camera(camera)
                .time_zone
                .iana_name()
                .map(str::to_string)
        };
        assert_eq!(zone(c.camera("paris")).as_deref(), Some("Europe/Paris"));
        assert_eq!(zone(c.camera("local")).as_deref(), Some("America/New_York"));
        assert_eq!(zone(None).as_deref(), Some("America/New_York"));
        let e = Config::from_toml_str(
            "[[cameras]]\nname = \"a\"\nurl = \"/srv/a\"\ntime_zone = \"Mars/Base\"\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("cameras[0].time_zone"), "{e}");
        assert!(e.to_string().contains("IANA"), "{e}");
    }
}
