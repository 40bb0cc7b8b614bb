//! The rows of the `sources` tree: a source's record (state, fingerprint, watermark, counts,
//! live connection and outages).

use std::path::Path;

use serde::{Deserialize, Serialize};

/// Ingest state of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceState {
    /// Waiting for a decode worker.
    Queued,
    /// Being decoded and embedded.
    Ingesting,
    /// Every sampled frame is stored.
    Done,
    /// Decoding failed; `error` says why. Frames decoded before the failure are kept.
    Failed,
}

impl SourceState {
    /// The lowercase name used in the protocol.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Ingesting => "ingesting",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }
}

/// What identifies a file's content cheaply: size and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Fingerprint {
    /// Bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i128,
}

impl Fingerprint {
    /// Reads the fingerprint of a file.
    pub fn of(path: &Path) -> std::io::Result<Self> {
        let meta = std::fs::metadata(path)?;
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        Ok(Self {
            size: meta.len(),
            mtime_ns,
        })
    }
}

/// One source (a file) and how far its ingest got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceRecord {
    /// The source id: the canonical path.
    pub source: String,
    /// Number used in frame keys.
    pub no: u32,
    /// Fingerprint when ingest was queued.
    pub fingerprint: Fingerprint,
    /// Ingest state.
    pub state: SourceState,
    /// Offset of the last committed frame (resume point).
    pub watermark_ms: Option<u64>,
    /// Frames stored.
    pub frames: u64,
    /// Duration from the container, when known.
    pub duration_ms: Option<u64>,
    /// Seconds between samples used for this source.
    pub interval: f64,
    /// Why ingest failed, or a warning about skipped data.
    pub error: Option<String>,
    /// Wall-clock time of offset 0, ms since the epoch, when known.
    #[serde(default)]
    pub start_wall_ms: Option<i64>,
    /// Frames decoded so far.
    #[serde(default)]
    pub decoded: u64,
    /// Candidate frames the scene test skipped.
    #[serde(default)]
    pub skipped: u64,
    /// Retention floor: frames below this offset were removed by retention and are never
    /// stored or returned again (commits below it are dropped, searches skip them).
    #[serde(default)]
    pub retain_from_ms: Option<u64>,
    /// When `error` was last set, ms since the epoch (stamped by [`Store::update_source`]).
    #[serde(default)]
    pub error_at_ms: Option<i64>,
    /// The file read when it differs from the source id (files of a camera folder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// For a live source (stream URL or growing file): where it is read from, its outages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveRecord>,
    /// Where each view number of this source's frames lies in the frame (issue 16); `None`
    /// for a source stored before views, whose one view 0 is the centre crop of a frame of
    /// unknown shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub views: Option<Vec<crate::embed::Region>>,
}

impl SourceRecord {
    /// A new source, `queued`, with nothing read yet.
    pub fn new(
        source: &str,
        no: u32,
        fingerprint: Fingerprint,
        interval: f64,
        duration_ms: Option<u64>,
    ) -> Self {
        Self {
            source: source.to_string(),
            no,
            fingerprint,
            state: SourceState::Queued,
            watermark_ms: None,
            frames: 0,
            duration_ms,
            interval,
            error: None,
            start_wall_ms: None,
            decoded: 0,
            skipped: 0,
            retain_from_ms: None,
            error_at_ms: None,
            path: None,
            live: None,
            views: None,
        }
    }
}

/// What the store keeps about a live source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct LiveRecord {
    /// The URL (credentials included) or the path of the growing file.
    pub url: String,
    /// Declared in the configuration (`[[cameras]]`): started from there, not from the store.
    #[serde(default)]
    pub camera: bool,
    /// True while frames arrive.
    #[serde(default)]
    pub connected: bool,
    /// Connections opened after the first.
    #[serde(default)]
    pub reconnects: u64,
    /// The latest outages, oldest first (at most [`MAX_OUTAGES`]); the last is open while
    /// `end_ms` is `None`.
    #[serde(default)]
    pub outages: Vec<Outage>,
}

/// Outages kept per live source.
pub const MAX_OUTAGES: usize = 100;

/// A time a live source delivered no frames.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outage {
    /// When it began (the last data received, or the failed first attempt), ms since the epoch.
    pub start_ms: i64,
    /// When frames arrived again; `None` while it lasts.
    pub end_ms: Option<i64>,
    /// FFmpeg's reason for the drop (the latest failed attempt's).
    pub reason: String,
    /// Connection attempts that failed during it.
    pub attempts: u64,
}
