//! The query stage: a query (text or image) is embedded on the daemon's own query pool, at
//! normal priority ([`Searcher`]); the search plan ([`search`]) resolves the filters and
//! runs an exact scan or a filtered graph search; neighbouring hits become clips
//! ([`clips`]). Its results are domain [`Clip`]s; the protocol maps them to the wire.

pub mod clips;
pub mod confidence;
mod glob;
pub mod remote;
pub mod search;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::catalog::{Catalog, CatalogError, RebuildProgress};
use crate::embed::{EmbedError, Embedder};

pub use confidence::Calibration;

pub use glob::source_matches;
pub use search::{exact_scan_applies, score_exactly, view_in_zone, Filter, EXACT_SCAN_MAX_FRAMES};

/// A clip: neighbouring matching frames of one source.
#[derive(Debug, Clone, PartialEq)]
pub struct Clip {
    /// Source id.
    pub source: String,
    /// Offset of the first matching frame, ms.
    pub start_ms: u64,
    /// End of the clip: the last matching frame plus one sample interval, ms.
    pub end_ms: u64,
    /// Offset of the best matching frame, ms.
    pub best_ms: u64,
    /// The view of the best frame that matched best (its number in the source's views).
    pub view: usize,
    /// Where that view lies in the frame; `None` for frames stored before views.
    pub region: Option<crate::embed::Region>,
    /// Cosine similarity of the best frame.
    pub score: f32,
    /// Calibrated confidence of the best frame, in [0, 1] ([`confidence`]).
    pub confidence: f32,
    /// Wall-clock time of `start_ms`, ms since the epoch, when the source's time is known.
    pub start_wall_ms: Option<i64>,
    /// Wall-clock time of `end_ms`.
    pub end_wall_ms: Option<i64>,
    /// The node that ingested the source, for a clip found in a shared Milvus; `None` for
    /// this daemon's own index.
    pub node: Option<String>,
}

/// What is searched for.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryInput {
    /// A text, embedded by the text tower.
    Text(String),
    /// An encoded image (PNG, JPEG, ...), embedded by the image tower.
    Image(Vec<u8>),
}

/// One search: what, how many clips, and the filters.
#[derive(Debug, Clone)]
pub struct Query {
    /// Text or image.
    pub input: QueryInput,
    /// Clips wanted (at least 1).
    pub k: usize,
    /// Source, offset and wall-clock filters.
    pub filter: Filter,
    /// Clips whose confidence is below this are dropped.
    pub min_confidence: Option<f32>,
}

/// Why a search failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The query image cannot be decoded.
    #[error("{0}")]
    BadImage(String),
    /// Embedding the query failed.
    #[error(transparent)]
    Embed(EmbedError),
    /// Reading the store or index failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The shared Milvus did not answer the search.
    #[error("the search could not run in the shared Milvus: {0}")]
    Remote(#[from] crate::milvus::MilvusError),
    /// The index is owed a rebuild or being rebuilt: it cannot answer yet.
    #[error("the index is being rebuilt from the stored vectors ({}): {} of {} frames so far; searches are answered when it is done (`frameseek status` shows the progress)", .0.reason, .0.added, .0.total)]
    Rebuilding(RebuildProgress),
}

/// Searches answered and their latencies (the last [`LATENCY_WINDOW`]).
#[derive(Debug, Default)]
struct SearchCounters {
    searches: AtomicU64,
    latencies_ms: Mutex<VecDeque<f64>>,
}

/// Searches whose latency `stats` summarises.
pub const LATENCY_WINDOW: usize = 1024;

/// Search counters for `stats`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchStats {
    /// Searches answered since start.
    pub searches: u64,
    /// Median latency of the recent searches, ms.
    pub p50_ms: f64,
    /// 99th percentile latency of the recent searches, ms.
    pub p99_ms: f64,
}

/// The query stage of a running daemon.
pub struct Searcher {
    embedder: Arc<Embedder>,
    catalog: Arc<Catalog>,
    /// Queries' own rayon pool, at normal priority (ingest runs niced on the global pool).
    pool: rayon::ThreadPool,
    gap_ms: u64,
    calibration: Calibration,
    counters: SearchCounters,
    /// The shared Milvus that answers searches instead of the local index (issue 18).
    remote: Option<Arc<crate::milvus::Milvus>>,
}

impl std::fmt::Debug for Searcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Searcher")
            .field("gap_ms", &self.gap_ms)
            .finish()
    }
}

impl Searcher {
    /// A searcher over `catalog` with the model `embedder`; hits closer than `clip_gap`
    /// seconds merge into one clip; `calibration` turns scores into confidences.
    pub fn new(
        embedder: Arc<Embedder>,
        catalog: Arc<Catalog>,
        clip_gap: f64,
        calibration: Calibration,
    ) -> std::io::Result<Self> {
        Ok(Self {
            embedder,
            catalog,
            pool: crate::priority::query_pool()?,
            gap_ms: (clip_gap * 1000.0).round() as u64,
            calibration,
            counters: SearchCounters::default(),
            remote: None,
        })
    }

    /// Searches answer from the shared Milvus (every node's frames) instead of the local
    /// index.
    pub fn with_remote(mut self, milvus: Arc<crate::milvus::Milvus>) -> Self {
        self.remote = Some(milvus);
        self
    }

    /// Embeds the query and returns the best `k` clips, best first.
    pub fn search(&self, query: &Query) -> Result<Vec<Clip>, QueryError> {
        let local_index = self.remote.is_none();
        if let Some(progress) = self.catalog.rebuild_progress().filter(|_| local_index) {
            return Err(QueryError::Rebuilding(progress));
        }
        let started = Instant::now();
        let vector = match &query.input {
            QueryInput::Text(text) => self
                .pool
                .install(|| self.embedder.embed_texts(&[text]))
                .map_err(QueryError::Embed)?
                .remove(0),
            QueryInput::Image(bytes) => self
                .pool
                .install(|| self.embedder.embed_image_bytes(bytes))
                .map_err(|e| match e {
                    EmbedError::Input(m) => QueryError::BadImage(m),
                    other => QueryError::Embed(other),
                })?,
        };
        let mut clips = match &self.remote {
            Some(m) => remote::search_remote(m, &vector, query.k, &query.filter, self.gap_ms)?,
            // On the query pool, whose threads an exact scan of many sources shares out.
            None => self.pool.install(|| {
                search::search(&self.catalog, &vector, query.k, &query.filter, self.gap_ms)
            })?,
        };
        for c in &mut clips {
            c.confidence = self.calibration.confidence(c.score);
        }
        if let Some(min) = query.min_confidence {
            clips.retain(|c| c.confidence >= min);
        }
        self.counters.searches.fetch_add(1, Ordering::Relaxed);
        let mut window = self.counters.latencies_ms.lock().expect("latency lock");
        if window.len() == LATENCY_WINDOW {
            window.pop_front();
        }
        window.push_back(started.elapsed().as_secs_f64() * 1000.0);
        Ok(clips)
    }

    /// The model's cosine-to-confidence mapping.
    pub fn calibration(&self) -> &Calibration {
        &self.calibration
    }

    /// The query pool's embedding of a text (as a search embeds it).
    pub fn embed_text(&self, text: &str) -> Result<Vec<f32>, QueryError> {
        self.pool
            .install(|| self.embedder.embed_texts(&[text]))
            .map_err(QueryError::Embed)
            .map(|mut v| v.remove(0))
    }

    /// Searches answered and the latency percentiles of the recent ones.
    pub fn stats(&self) -> SearchStats {
        let mut latencies: Vec<f64> = self
            .counters
            .latencies_ms
            .lock()
            .expect("latency lock")
            .iter()
            .copied()
            .collect();
        latencies.sort_by(f64::total_cmp);
        SearchStats {
            searches: self.counters.searches.load(Ordering::Relaxed),
            p50_ms: percentile(&latencies, 0.50),
            p99_ms: percentile(&latencies, 0.99),
        }
    }
}

/// The value at fraction `q` of sorted samples (nearest rank), 0 when empty.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
    }
}
