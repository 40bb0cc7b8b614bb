//! Cameras (`[[cameras]]`): named live streams, files still being written, or folders a
//! recorder writes segments into, each with its own sampling; and the one place where a
//! camera's settings are merged over the `[ingest]` defaults.

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
    pub url: String,
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
    /// The time zone of the times in file names (`ingest.time_zone`).
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
        SourceSettings {
            interval,
            policy: sampling.policy(threshold, max_gap),
            time_pattern: pattern,
            time_zone: self.time_zone.clone(),
        }
    }
}
