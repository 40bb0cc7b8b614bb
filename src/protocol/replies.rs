//! The payloads of successful replies, one type per request (see docs/PROTOCOL.md).

use serde::{Deserialize, Serialize};

/// A clip: neighbouring matching frames of one source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Clip {
    /// Source id.
    pub source: String,
    /// Offset of the first matching frame, ms.
    pub start_ms: u64,
    /// End of the clip: the last matching frame plus one sample interval, ms.
    pub end_ms: u64,
    /// Offset of the best matching frame, ms.
    pub best_ms: u64,
    /// Cosine similarity of the best frame.
    pub score: f32,
    /// Calibrated confidence of the best frame, in [0, 1] (per model; see ARCHITECTURE.md).
    #[serde(default)]
    pub confidence: f32,
    /// Wall-clock time of `start_ms` (UTC, RFC 3339), when the source's time is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_wall: Option<String>,
    /// Wall-clock time of `end_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_wall: Option<String>,
    /// Where in the frame the best frame matched best (its best view), as fractions of the
    /// frame; absent for frames stored before views (issue 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<Region>,
    /// The node (`[daemon] node`) that ingested the source (absent from older daemons).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// A rectangle of the frame as fractions of its width and height, each in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width.
    pub w: f32,
    /// Height.
    pub h: f32,
}

/// Alerts and incidents carry a region as `[x, y, w, h]`.
impl From<[f32; 4]> for Region {
    fn from([x, y, w, h]: [f32; 4]) -> Self {
        Self { x, y, w, h }
    }
}

impl From<Region> for [f32; 4] {
    fn from(r: Region) -> Self {
        [r.x, r.y, r.w, r.h]
    }
}

/// Reply to `search`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchReply {
    /// Best clips first.
    pub clips: Vec<Clip>,
}

/// What happened to one path of an `ingest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestOutcome {
    /// The path as given.
    pub path: String,
    /// The source id (canonical path) when the path was accepted.
    pub source: Option<String>,
    /// `queued`, `unchanged` (already indexed, not re-read), `requeued` (changed since it
    /// was indexed), or `error`.
    pub result: String,
    /// Details for `error` and `unchanged`.
    pub message: Option<String>,
}

/// Reply to `ingest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestReply {
    /// One outcome per file found.
    pub outcomes: Vec<IngestOutcome>,
}

/// Model facts in `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Model id as configured.
    pub id: String,
    /// Embedding dimension.
    pub dim: usize,
}

/// Sources counted by state, in `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCounts {
    /// Waiting for a decode worker.
    pub queued: u64,
    /// Being read.
    pub ingesting: u64,
    /// Finished.
    pub done: u64,
    /// Failed (the error says why).
    pub failed: u64,
}

/// One source in `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceStatus {
    /// Source id.
    pub source: String,
    /// `queued`, `ingesting`, `done` or `failed`.
    pub state: String,
    /// Frames stored.
    pub frames: u64,
    /// Why it failed, or a warning.
    pub error: Option<String>,
    /// Offset of the last committed frame, ms.
    pub watermark_ms: Option<u64>,
    /// Duration of the file, ms, when known.
    pub duration_ms: Option<u64>,
    /// Fraction done, 0 to 1, when the duration is known.
    pub progress: Option<f64>,
    /// Frames decoded.
    #[serde(default)]
    pub decoded: u64,
    /// Candidate frames the scene test skipped as unchanged.
    #[serde(default)]
    pub skipped: u64,
    /// Wall-clock time of the file's start (UTC, RFC 3339), when known.
    #[serde(default)]
    pub start_wall: Option<String>,
    /// When `error` was reported (UTC, RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_at: Option<String>,
    /// For a live source (stream or growing file): connection state and outages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveStatus>,
}

/// The live part of a source's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveStatus {
    /// The URL without credentials, or the growing file's path.
    pub url: String,
    /// Declared in the configuration's `[[cameras]]`.
    pub camera: bool,
    /// True while frames arrive.
    pub connected: bool,
    /// Connections opened after the first.
    pub reconnects: u64,
    /// The latest outages, oldest first (at most 100).
    pub outages: Vec<OutageStatus>,
}

/// One outage of a live source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutageStatus {
    /// When it began (UTC, RFC 3339).
    pub start: String,
    /// When frames arrived again (UTC, RFC 3339); `null` while it lasts.
    pub end: Option<String>,
    /// `start` in ms since the epoch.
    pub start_ms: i64,
    /// `end` in ms since the epoch.
    pub end_ms: Option<i64>,
    /// FFmpeg's reason (of the latest failed attempt).
    pub reason: String,
    /// Failed connection attempts during it.
    pub attempts: u64,
}

/// Reply to `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReply {
    /// Daemon version.
    pub version: String,
    /// Protocol version.
    pub protocol: u32,
    /// The loaded model.
    pub model: ModelInfo,
    /// Frames stored.
    pub frames: u64,
    /// Sources waiting for a decode worker.
    pub queue: usize,
    /// The sources asked for (every source, unless the request set `limit` or `source`).
    pub sources: Vec<SourceStatus>,
    /// Sources matching the request's `source` filter (all when unset), before `limit`.
    #[serde(default)]
    pub sources_matching: u64,
    /// Every source, counted by state.
    #[serde(default)]
    pub states: StateCounts,
    /// Why ingest is stopped (a full disk: what, where, what to do); null while it runs.
    #[serde(default)]
    pub ingest_error: Option<String>,
    /// Frames removed by retention since the state was created.
    #[serde(default)]
    pub retention_removed: u64,
    /// Whether the ingest pipeline can still make progress (absent from older daemons).
    #[serde(default)]
    pub pipeline: PipelineStatus,
    /// The rebuild of the index from the stored vectors, while one runs (searches are
    /// refused with `rebuilding` until it is done); null otherwise.
    #[serde(default)]
    pub index_rebuild: Option<IndexRebuildStatus>,
    /// The last configuration reload (SIGHUP) since start; absent when none happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reload: Option<ReloadStatus>,
    /// The shared Milvus and the outbox's backlog, with `[index] backend = "milvus"`;
    /// absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub milvus: Option<MilvusStatus>,
}

/// How a configuration reload ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReloadOutcome {
    /// The new configuration is in force (what a reload may change of it).
    Applied,
    /// The new configuration did not load or check; the one in force stays.
    Refused,
}

/// The last configuration reload, in `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadStatus {
    /// When, ISO 8601 UTC.
    pub at: String,
    /// Applied or refused.
    pub outcome: ReloadOutcome,
    /// Why it was refused; null when applied.
    pub error: Option<String>,
    /// What changed and was put in force (`camera added: NAME`, `ingest.watch added:
    /// FOLDER`, `retention`, …).
    pub applied: Vec<String>,
    /// Settings that changed in the configuration but need a restart; not applied.
    pub needs_restart: Vec<String>,
}

/// The shared Milvus as this node sees it, in `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MilvusStatus {
    /// This node's name.
    pub node: String,
    /// The configured URI.
    pub uri: String,
    /// The collection.
    pub collection: String,
    /// Whether the last call to Milvus succeeded.
    pub reachable: bool,
    /// Frames committed here and not yet in Milvus.
    pub backlog: u64,
    /// Frames removed here whose rows Milvus still holds.
    pub backlog_deletes: u64,
    /// Frames written to Milvus since the daemon started.
    pub written: u64,
    /// Frames deleted from Milvus since the daemon started.
    pub deleted: u64,
    /// The last error while Milvus is unreachable; null otherwise.
    pub last_error: Option<String>,
}

/// A rebuild of the index in progress, in `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexRebuildStatus {
    /// Why the index is rebuilt.
    pub reason: String,
    /// Vectors in the new index so far.
    pub added: u64,
    /// Vectors stored.
    pub total: u64,
}

/// The ingest pipeline's health in `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineStatus {
    /// True when sources are queued and cannot progress (see `reason`).
    pub stalled: bool,
    /// Why the pipeline is stalled; null while it is not.
    pub reason: Option<String>,
    /// Decode worker threads started (`ingest.decode_workers`).
    pub decode_workers: usize,
    /// Decode worker threads running.
    pub decode_workers_alive: usize,
    /// Times a decode worker panicked outside a file's guard and was restarted in place.
    pub worker_restarts: u64,
}

/// Reply to `forget`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgetReply {
    /// The source removed.
    pub source: String,
    /// Frames removed.
    pub frames_removed: u64,
    /// The node forgotten (`forget` with `node`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// Reply to `export`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportReply {
    /// The source.
    pub source: String,
    /// Path of the clip file written (the daemon's export folder).
    pub clip: String,
    /// Path of the JPEG written.
    pub thumbnail: String,
    /// The range asked for, ms.
    pub requested_start_ms: u64,
    /// End of the range asked for (capped at the file's duration), ms.
    pub requested_end_ms: u64,
    /// Start of what was written: the keyframe at or before `requested_start_ms`, ms.
    pub start_ms: u64,
    /// End of what was written, ms.
    pub end_ms: u64,
    /// Offset of the thumbnail's frame, ms.
    pub best_ms: u64,
    /// Video codec, copied unchanged.
    pub codec: String,
    /// Size of the clip file, bytes.
    pub bytes: u64,
}

/// Reply to `frame`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameReply {
    /// The source.
    pub source: String,
    /// Offset of the frame returned, ms.
    pub at_ms: u64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// JPEG bytes in standard base64.
    pub jpeg: String,
}

/// Reply to `stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsReply {
    /// Sampled frames stored (each once, whatever its views).
    pub frames: u64,
    /// Views stored (one vector each; issue 16): `frames` times the views per frame.
    #[serde(default)]
    pub views: u64,
    /// Vectors in the index (views).
    pub indexed: u64,
    /// Sources known.
    pub sources: u64,
    /// Sources waiting.
    pub queue: usize,
    /// Frames embedded since start.
    pub frames_embedded: u64,
    /// Mean embed time per batch since start, ms.
    pub embed_batch_ms: f64,
    /// Searches answered since start.
    pub searches: u64,
    /// Median search latency over the last 1024 searches, ms.
    pub search_ms_p50: f64,
    /// 99th percentile search latency over the last 1024 searches, ms.
    pub search_ms_p99: f64,
    /// Size of the index file at its last checkpoint, bytes.
    pub index_bytes: u64,
    /// Ingest rate of each source that committed frames in the last minute.
    pub ingest_rates: Vec<IngestRate>,
    /// Seconds since the daemon started.
    pub uptime_s: f64,
    /// Per-stage totals since start, ms (decode, convert, hand-off, embed, commit).
    #[serde(default)]
    pub stage_ms: StageTimes,
    /// Frames removed by retention since the state was created.
    #[serde(default)]
    pub retention_removed: u64,
}

/// Per-stage time totals of the ingest pipeline, in milliseconds since the daemon started.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageTimes {
    /// Decode threads: FFmpeg demux and decode.
    pub decode: f64,
    /// Decode threads: swscale to RGB, crop, normalise.
    pub convert: f64,
    /// Decode threads: blocked handing frames to the embed worker (back-pressure).
    pub handoff: f64,
    /// Embed worker: CLIP image tower.
    pub embed: f64,
    /// Embed worker: sled commit + flush + usearch add (+ checkpoints).
    pub commit: f64,
}

/// Ingest rate of one source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestRate {
    /// Source id.
    pub source: String,
    /// Frames committed since the daemon started.
    pub frames: u64,
    /// Sampled frames embedded and committed per second.
    pub frames_per_s: f64,
}
