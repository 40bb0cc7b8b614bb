//! The requests that act: `search`, `ingest`, `forget`, `export` and `frame`. Each checks
//! what the protocol allows, calls the stage that does the work, and maps its result and
//! its typed errors to the wire (reply, or error code and message).

use base64::Engine;

use super::Daemon;
use crate::catalog::CatalogError;
use crate::media::export::ExportError;
use crate::media::MediaError;
use crate::protocol::*;
use crate::query::{Filter, Query, QueryError, QueryInput};
use crate::source::{Admission, AdmitError, IndexedFileError};
use crate::store::StoreError;

fn err(code: ErrorCode, message: impl Into<String>) -> ErrorBody {
    ErrorBody::new(code, message)
}

/// An unexpected failure: the `internal` code with the error's message.
pub(super) fn internal(e: impl std::fmt::Display) -> ErrorBody {
    err(ErrorCode::Internal, e.to_string())
}

impl Daemon {
    pub(super) fn search(&self, r: SearchRequest) -> Result<SearchReply, ErrorBody> {
        let k = r.k.unwrap_or(10);
        if k == 0 || k > MAX_K {
            return Err(err(
                ErrorCode::InvalidRequest,
                format!("k must be between 1 and {MAX_K}"),
            ));
        }
        if let (Some(a), Some(b)) = (r.start_ms, r.end_ms) {
            if a > b {
                return Err(err(ErrorCode::InvalidRequest, "start_ms is after end_ms"));
            }
        }
        if let Some(c) = r.min_confidence {
            if !(0.0..=1.0).contains(&c) {
                return Err(err(
                    ErrorCode::InvalidRequest,
                    format!("min_confidence must be between 0 and 1, got {c}"),
                ));
            }
        }
        let input = match (r.text, r.image) {
            (Some(text), None) => {
                if text.trim().is_empty() {
                    return Err(err(ErrorCode::EmptyQuery, "query text is empty"));
                }
                if text.len() > MAX_QUERY_BYTES {
                    return Err(err(
                        ErrorCode::InvalidRequest,
                        format!("query text is longer than {MAX_QUERY_BYTES} bytes"),
                    ));
                }
                QueryInput::Text(text)
            }
            (None, Some(image)) => QueryInput::Image(
                base64::engine::general_purpose::STANDARD
                    .decode(image.as_bytes())
                    .map_err(|e| {
                        err(
                            ErrorCode::BadImage,
                            format!("image is not valid base64: {e}"),
                        )
                    })?,
            ),
            (Some(_), Some(_)) => {
                return Err(err(
                    ErrorCode::InvalidRequest,
                    "give either text or image, not both",
                ))
            }
            (None, None) => return Err(err(ErrorCode::EmptyQuery, "search needs text or image")),
        };
        let region = r.region.map(domain_region).transpose()?;
        let query = Query {
            input,
            k,
            filter: Filter {
                source: r.source,
                start_ms: r.start_ms,
                end_ms: r.end_ms,
                after_wall_ms: r.after_wall_ms,
                before_wall_ms: r.before_wall_ms,
                region,
                node: r.node.clone(),
            },
            min_confidence: r.min_confidence,
        };
        // The local index holds only this node's frames.
        if self.milvus.is_none() && r.node.as_ref().is_some_and(|n| *n != self.node) {
            return Ok(SearchReply { clips: Vec::new() });
        }
        let clips = self.searcher.search(&query).map_err(|e| match e {
            QueryError::BadImage(m) => err(ErrorCode::BadImage, m),
            e @ QueryError::Rebuilding(_) => err(ErrorCode::Rebuilding, e.to_string()),
            e @ QueryError::Remote(_) => err(ErrorCode::Unavailable, e.to_string()),
            other => internal(other),
        })?;
        Ok(SearchReply {
            clips: clips
                .into_iter()
                .map(|c| wire_clip(c, &self.node))
                .collect(),
        })
    }

    pub(super) fn ingest(&self, r: IngestRequest) -> Result<IngestReply, ErrorBody> {
        if r.paths.is_empty() {
            return Err(err(
                ErrorCode::InvalidRequest,
                "ingest needs at least one path",
            ));
        }
        let outcomes = self
            .sources
            .ingest(&r.paths, r.follow)
            .into_iter()
            .map(wire_outcome)
            .collect();
        Ok(IngestReply { outcomes })
    }

    pub(super) fn forget(&self, r: ForgetRequest) -> Result<ForgetReply, ErrorBody> {
        if let Some(node) = r.node {
            if !r.source.is_empty() {
                return Err(err(
                    ErrorCode::InvalidRequest,
                    "forget takes a source or a node, not both",
                ));
            }
            return self.forget_node(node);
        }
        if self.sources.stop_live(&r.source) {
            tracing::info!(source = %r.source, "live source stopped by forget");
        }
        match self.catalog.forget(&r.source) {
            Ok(n) => Ok(ForgetReply {
                source: r.source,
                frames_removed: n,
                node: None,
            }),
            Err(CatalogError::Store(StoreError::UnknownSource(s))) => Err(err(
                ErrorCode::NotFound,
                format!("no source {s}; `frameseek status` lists the sources"),
            )),
            Err(e) => Err(internal(e)),
        }
    }

    pub(super) fn export(&self, r: ExportRequest) -> Result<ExportReply, ErrorBody> {
        if r.end_ms <= r.start_ms {
            return Err(err(
                ErrorCode::InvalidRequest,
                format!(
                    "end_ms ({}) must be after start_ms ({})",
                    r.end_ms, r.start_ms
                ),
            ));
        }
        let file = self.local_file(&r.source, r.node.as_deref())?;
        let best_ms = r.best_ms.unwrap_or(r.start_ms);
        let outline = r.region.map(domain_region).transpose()?;
        let written = crate::media::export::export_range(
            &file,
            &r.source,
            (r.start_ms, r.end_ms),
            (best_ms, outline),
            &self.config.daemon.export_dir(),
            crate::media::export::ExportLimits {
                max_bytes: (self.config.daemon.export_max_mb > 0.0)
                    .then_some((self.config.daemon.export_max_mb * 1e6) as u64),
                reserve_bytes: (self.config.daemon.export_reserve_mb * 1e6) as u64,
            },
        )
        .map_err(|e| match e {
            ExportError::Media(m) => media_error(m),
            ExportError::Full(_) => err(ErrorCode::ExportFull, e.to_string()),
            other => internal(other),
        })?;
        Ok(ExportReply {
            source: r.source,
            clip: written.clip.display().to_string(),
            thumbnail: written.thumbnail.display().to_string(),
            requested_start_ms: r.start_ms,
            requested_end_ms: written.requested_end_ms,
            start_ms: written.start_ms,
            end_ms: written.end_ms,
            best_ms: written.best_ms,
            codec: written.codec,
            bytes: written.bytes,
        })
    }

    pub(super) fn frame(&self, r: FrameRequest) -> Result<FrameReply, ErrorBody> {
        let file = self.local_file(&r.source, r.node.as_deref())?;
        let frame =
            crate::media::frame_jpeg(&file, r.at_ms, r.max_width, None).map_err(media_error)?;
        Ok(FrameReply {
            source: r.source,
            at_ms: frame.at_ms,
            width: frame.width,
            height: frame.height,
            jpeg: base64::engine::general_purpose::STANDARD.encode(&frame.jpeg),
        })
    }
}

/// A clip of the query stage on the wire: wall-clock times as UTC text, and its node
/// (`local`, this daemon's, unless it came from another node).
fn wire_clip(c: crate::query::Clip, local: &str) -> Clip {
    Clip {
        node: Some(c.node.unwrap_or_else(|| local.to_string())),
        source: c.source,
        start_ms: c.start_ms,
        end_ms: c.end_ms,
        best_ms: c.best_ms,
        score: c.score,
        confidence: c.confidence,
        start_wall: c.start_wall_ms.map(crate::clock::format_utc),
        end_wall: c.end_wall_ms.map(crate::clock::format_utc),
        region: c.region.map(wire_region),
    }
}

/// A region on the wire (search clips, alerts and incidents; `[x, y, w, h]` through
/// `Region`'s `From`): the one conversion out of the domain's [`crate::embed::Region`].
pub(super) fn wire_region(r: crate::embed::Region) -> Region {
    Region {
        x: r.x,
        y: r.y,
        w: r.w,
        h: r.h,
    }
}

/// A region from the wire, checked to lie inside the frame (`invalid_request` saying what
/// to give otherwise): the one conversion into the domain's, for search zones, export
/// outlines and alerts.
pub(super) fn domain_region(r: Region) -> Result<crate::embed::Region, ErrorBody> {
    crate::embed::Region::checked(r.x, r.y, r.w, r.h)
        .map_err(|e| err(ErrorCode::InvalidRequest, format!("region: {e}")))
}

impl Daemon {
    /// `forget --node`: deletes a retired node's rows from the shared Milvus.
    fn forget_node(&self, node: String) -> Result<ForgetReply, ErrorBody> {
        let Some(milvus) = &self.milvus else {
            return Err(err(
                ErrorCode::InvalidRequest,
                "forget with a node needs [index] backend = \"milvus\": with usearch, every frame is this daemon's own",
            ));
        };
        if node == self.node {
            return Err(err(
                ErrorCode::InvalidRequest,
                format!("{node} is this daemon's own node: forget its sources one by one, or run forget --node {node} on another node once this one is retired"),
            ));
        }
        let unavailable =
            |e: crate::milvus::MilvusError| err(ErrorCode::Unavailable, e.to_string());
        let before = milvus.count(Some(&node)).map_err(unavailable)?;
        milvus.delete_node(&node).map_err(unavailable)?;
        tracing::info!(%node, rows = before, "forgot a node's frames in Milvus");
        Ok(ForgetReply {
            source: String::new(),
            frames_removed: before,
            node: Some(node),
        })
    }

    /// The file behind a source of this node, for `export` and `frame`. A source of
    /// another node (named by the request, or found only in the shared Milvus) is refused
    /// with `other_node`, naming the node whose daemon has the file.
    fn local_file(
        &self,
        source: &str,
        node: Option<&str>,
    ) -> Result<std::path::PathBuf, ErrorBody> {
        let other = |n: &str| {
            err(
                ErrorCode::OtherNode,
                format!("source {source} is node {n}'s footage, and this daemon is node {}: ask the daemon on {n} for it", self.node),
            )
        };
        if let Some(n) = node.filter(|n| *n != self.node) {
            return Err(other(n));
        }
        match self.sources.indexed_file(source) {
            Err(e @ IndexedFileError::Unknown(_)) => {
                let elsewhere = self
                    .milvus
                    .as_ref()
                    .and_then(|m| m.node_of_source(source).ok().flatten());
                match elsewhere {
                    Some(n) if n != self.node => Err(other(&n)),
                    _ => Err(indexed_file_error(e)),
                }
            }
            r => r.map_err(indexed_file_error),
        }
    }
}

/// One admission of the source stage on the wire.
fn wire_outcome(a: Admission) -> IngestOutcome {
    IngestOutcome {
        path: a.given,
        source: a.source,
        result: a.result.as_str().into(),
        message: a.message,
    }
}

/// Why a path is refused, as an error code.
fn admit_error(e: AdmitError) -> ErrorBody {
    let code = match e {
        AdmitError::NotAbsolute(_) | AdmitError::NotRegular(_) => ErrorCode::InvalidRequest,
        AdmitError::Missing { .. } => ErrorCode::NotFound,
        AdmitError::OutsideRoots { .. } => ErrorCode::Forbidden,
    };
    err(code, e.to_string())
}

/// Why an indexed source's file cannot be read back, as an error code.
fn indexed_file_error(e: IndexedFileError) -> ErrorBody {
    match e {
        IndexedFileError::Refused(a) => admit_error(a),
        IndexedFileError::Changed(_) => err(ErrorCode::SourceChanged, e.to_string()),
        IndexedFileError::NotRecorded(_) => err(ErrorCode::NotRecorded, e.to_string()),
        IndexedFileError::Store(s) => internal(s),
        IndexedFileError::Unknown(_)
        | IndexedFileError::Gone { .. }
        | IndexedFileError::Unreadable { .. } => err(ErrorCode::NotFound, e.to_string()),
    }
}

/// A failure reading footage back out, as an error code.
fn media_error(e: MediaError) -> ErrorBody {
    match e {
        MediaError::OutOfRange { .. } => err(ErrorCode::OutOfRange, e.to_string()),
        other => internal(other),
    }
}
