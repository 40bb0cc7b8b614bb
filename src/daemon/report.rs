//! The requests that report: `status` (per-source progress, live connections, outages) and
//! `stats` (counters of every stage).

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::requests::internal;
use super::Daemon;
use crate::protocol::*;
use crate::source::redact;
use crate::store::SourceState;

impl Daemon {
    pub(super) fn status(&self, request: StatusRequest) -> Result<StatusReply, ErrorBody> {
        // Counted over every source, copied only for the page asked for.
        let (picked, matching, states) = self
            .catalog
            .store()
            .with_sources(|table| {
                let mut states = StateCounts::default();
                let mut matching = 0u64;
                let mut picked = Vec::new();
                for r in table.iter() {
                    match r.state {
                        SourceState::Queued => states.queued += 1,
                        SourceState::Ingesting => states.ingesting += 1,
                        SourceState::Done => states.done += 1,
                        SourceState::Failed => states.failed += 1,
                    }
                    if request
                        .source
                        .as_deref()
                        .is_some_and(|p| !crate::query::source_matches(p, &r.source))
                    {
                        continue;
                    }
                    matching += 1;
                    if request.limit.is_none_or(|l| picked.len() < l) {
                        picked.push(r.clone());
                    }
                }
                (picked, matching, states)
            })
            .map_err(internal)?;
        let sources = picked
            .into_iter()
            .map(|r| {
                let progress = match (r.state, r.duration_ms, r.watermark_ms) {
                    (SourceState::Done, _, _) => Some(1.0),
                    (_, Some(d), Some(w)) if d > 0 => Some((w as f64 / d as f64).min(1.0)),
                    (_, Some(_), None) => Some(0.0),
                    _ => None,
                };
                SourceStatus {
                    source: r.source,
                    state: r.state.as_str().into(),
                    frames: r.frames,
                    error: r.error,
                    watermark_ms: r.watermark_ms,
                    duration_ms: r.duration_ms,
                    progress,
                    decoded: r.decoded,
                    skipped: r.skipped,
                    start_wall: r.start_wall_ms.map(crate::clock::format_utc),
                    error_at: r.error_at_ms.map(crate::clock::format_utc),
                    live: r.live.map(|l| LiveStatus {
                        url: redact(&l.url),
                        camera: l.camera,
                        connected: l.connected,
                        reconnects: l.reconnects,
                        outages: l
                            .outages
                            .into_iter()
                            .map(|o| OutageStatus {
                                start: crate::clock::format_utc(o.start_ms),
                                end: o.end_ms.map(crate::clock::format_utc),
                                start_ms: o.start_ms,
                                end_ms: o.end_ms,
                                reason: o.reason,
                                attempts: o.attempts,
                            })
                            .collect(),
                    }),
                }
            })
            .collect();
        let identity = self.embedder.identity();
        Ok(StatusReply {
            version: env!("CARGO_PKG_VERSION").into(),
            protocol: PROTOCOL_VERSION,
            model: ModelInfo {
                id: identity.id.clone(),
                dim: identity.dim,
            },
            frames: self
                .catalog
                .store()
                .with_sources(|t| t.frames())
                .map_err(internal)?,
            queue: self.ingest.stats().queued.load(Ordering::SeqCst),
            sources,
            sources_matching: matching,
            states,
            ingest_error: self.ingest.halt().reason(),
            retention_removed: self.catalog.store().retention_removed(),
            pipeline: {
                let h = self.ingest.health();
                PipelineStatus {
                    stalled: h.stalled.is_some(),
                    reason: h.stalled,
                    decode_workers: h.decode_workers,
                    decode_workers_alive: h.decode_workers_alive,
                    worker_restarts: h.worker_restarts,
                }
            },
            index_rebuild: self.catalog.rebuild_progress().map(|p| IndexRebuildStatus {
                reason: p.reason,
                added: p.added as u64,
                total: p.total as u64,
            }),
            reload: self.reloadable.last(),
            milvus: self.milvus_status()?,
        })
    }

    /// The shared Milvus and the outbox's backlog, when the daemon uses one.
    fn milvus_status(&self) -> Result<Option<MilvusStatus>, ErrorBody> {
        let (Some(m), Some(drain)) = (&self.milvus, &self.drain) else {
            return Ok(None);
        };
        let (backlog, backlog_deletes) = self
            .catalog
            .store()
            .outbox_backlog()
            .map_err(super::requests::internal)?;
        let d = drain.status();
        Ok(Some(MilvusStatus {
            node: self.node.clone(),
            uri: m.uri().to_string(),
            collection: m.collection().to_string(),
            reachable: d.reachable,
            backlog,
            backlog_deletes,
            written: d.written,
            deleted: d.deleted,
            last_error: d.last_error,
        }))
    }

    pub(super) fn stats(&self) -> Result<StatsReply, ErrorBody> {
        let searches = self.searcher.stats();
        let recent = Instant::now() - std::time::Duration::from_secs(60);
        let mut ingest_rates: Vec<IngestRate> = self
            .ingest
            .stats()
            .rates
            .lock()
            .expect("rates lock")
            .iter()
            .filter(|(_, r)| r.last >= recent)
            .map(|(source, r)| IngestRate {
                source: source.clone(),
                frames: r.frames,
                frames_per_s: r.frames_per_second(),
            })
            .collect();
        ingest_rates.sort_by(|a, b| a.source.cmp(&b.source));
        let c = self.ingest.stats();
        let batches = c.batches.load(Ordering::Relaxed);
        Ok(StatsReply {
            frames: self
                .catalog
                .store()
                .with_sources(|t| t.frames())
                .map_err(internal)?,
            views: self.catalog.store().frame_count() as u64,
            indexed: self.catalog.indexed() as u64,
            sources: self.catalog.store().sources().map_err(internal)?.len() as u64,
            queue: c.queued.load(Ordering::SeqCst),
            frames_embedded: c.frames_embedded.load(Ordering::Relaxed),
            embed_batch_ms: if batches == 0 {
                0.0
            } else {
                c.embed_us.load(Ordering::Relaxed) as f64 / batches as f64 / 1000.0
            },
            searches: searches.searches,
            search_ms_p50: searches.p50_ms,
            search_ms_p99: searches.p99_ms,
            index_bytes: std::fs::metadata(self.config.daemon.state_dir.join("index.usearch"))
                .map(|m| m.len())
                .unwrap_or(0),
            ingest_rates,
            uptime_s: self.started.elapsed().as_secs_f64(),
            retention_removed: self.catalog.store().retention_removed(),
            stage_ms: StageTimes {
                decode: c.decode_us.load(Ordering::Relaxed) as f64 / 1000.0,
                convert: c.convert_us.load(Ordering::Relaxed) as f64 / 1000.0,
                handoff: c.handoff_us.load(Ordering::Relaxed) as f64 / 1000.0,
                embed: c.embed_us.load(Ordering::Relaxed) as f64 / 1000.0,
                commit: c.commit_us.load(Ordering::Relaxed) as f64 / 1000.0,
            },
        })
    }
}
