//! The socket protocol: one JSON object per line each way. Request and reply types are
//! shared by the daemon and the client; `docs/PROTOCOL.md` documents every field and code.

use serde::{Deserialize, Serialize};
use serde_json::Value;

mod alerts;
mod replies;

pub use alerts::*;
pub use replies::*;

/// Protocol version reported by `status`; bumped on incompatible changes.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest `k` a search may ask for.
pub const MAX_K: usize = 1000;

/// Longest query text in bytes.
pub const MAX_QUERY_BYTES: usize = 4096;

/// Error codes carried in error replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The line is not valid UTF-8 JSON.
    InvalidJson,
    /// The JSON is not a valid request (not an object, missing or mistyped field).
    InvalidRequest,
    /// `op` names no operation.
    UnknownOp,
    /// The request line is longer than the daemon accepts; the connection is closed.
    TooLarge,
    /// A search with empty text.
    EmptyQuery,
    /// A path or source that does not exist.
    NotFound,
    /// A path outside the configured footage roots.
    Forbidden,
    /// An image that cannot be decoded.
    BadImage,
    /// The daemon is stopping.
    ShuttingDown,
    /// A failure inside the daemon (database, index, model); the message says which.
    Internal,
    /// A source's file changed (or was replaced) since it was indexed; ingest it again.
    SourceChanged,
    /// A time or range outside the source file.
    OutOfRange,
    /// `export` or `frame` of a live stream: only embeddings were kept, no video.
    NotRecorded,
    /// The export folder is at `daemon.export_max_mb`, or its disk at
    /// `daemon.export_reserve_mb`.
    ExportFull,
    /// The daemon holds as many request bytes as it may (all connections together); the
    /// request is not read; send it again later.
    Busy,
    /// The index is being rebuilt from the stored vectors (after damage, an upgrade or a
    /// change of `index.precision`); searches are answered when it is done, and `status`
    /// shows its progress.
    Rebuilding,
    /// An `alerts_follow` subscriber fell further behind than the daemon buffers; the
    /// connection is closed: follow again and read the gap with `alerts_history`.
    Lagged,
    /// The shared vector engine (`[index] backend = "milvus"`) cannot be reached; the
    /// message names it. Ingest goes on locally; try again later.
    Unavailable,
    /// `export` or `frame` of a source another node ingested; the message names the node
    /// whose daemon has its file.
    OtherNode,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::InvalidRequest => "invalid_request",
            Self::UnknownOp => "unknown_op",
            Self::TooLarge => "too_large",
            Self::EmptyQuery => "empty_query",
            Self::NotFound => "not_found",
            Self::Forbidden => "forbidden",
            Self::BadImage => "bad_image",
            Self::ShuttingDown => "shutting_down",
            Self::Internal => "internal",
            Self::SourceChanged => "source_changed",
            Self::OutOfRange => "out_of_range",
            Self::NotRecorded => "not_recorded",
            Self::ExportFull => "export_full",
            Self::Busy => "busy",
            Self::Rebuilding => "rebuilding",
            Self::Lagged => "lagged",
            Self::Unavailable => "unavailable",
            Self::OtherNode => "other_node",
        }
    }
}

/// An error reply's payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ErrorBody {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// What went wrong and what to do.
    pub message: String,
}

impl ErrorBody {
    /// Builds an error body.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// `search`: text or image, best `k` clips, optional filters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// Query text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Query image, PNG or JPEG bytes in standard base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Clips wanted (default 10, at most 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<usize>,
    /// Source filter: an exact source id, or a glob (see [`crate::query::source_matches`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Only frames at or after this offset (ms) within their file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_ms: Option<u64>,
    /// Only frames at or before this offset (ms) within their file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_ms: Option<u64>,
    /// Only frames recorded at or after this wall-clock time (ms since the epoch, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_wall_ms: Option<i64>,
    /// Only frames recorded at or before this wall-clock time (ms since the epoch, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_wall_ms: Option<i64>,
    /// Drop clips whose confidence is below this (0 to 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_confidence: Option<f32>,
    /// Only views overlapping this zone of the frame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<Region>,
    /// Only frames ingested by this node (with a shared Milvus; with usearch, every frame
    /// is this daemon's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// `ingest`: files or folders to index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestRequest {
    /// Absolute paths of files or folders (folders are walked recursively), or live stream
    /// URLs (`rtsp://`, `rtmp://`, `udp://`, `http(s)://` HLS, ...).
    pub paths: Vec<String>,
    /// Follow the files as they grow (files still being written), until they stop growing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub follow: bool,
}

/// `forget`: remove a source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForgetRequest {
    /// The source id as `status` shows it (empty when `node` is given).
    #[serde(default)]
    pub source: String,
    /// Instead of a source: every frame of this node in the shared Milvus (a retired
    /// server's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// `export`: write a source's time range as a clip file (stream copy) and a JPEG of one frame
/// into the daemon's export folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    /// The source id as `status` shows it.
    pub source: String,
    /// Start of the range, ms from the start of the file.
    pub start_ms: u64,
    /// End of the range, ms.
    pub end_ms: u64,
    /// The frame for the JPEG, ms (default: `start_ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_ms: Option<u64>,
    /// A part of the frame to outline in the JPEG (a search clip's `region`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<Region>,
    /// The node the clip came from (its `node`); another node's source is refused with
    /// `other_node`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// `frame`: one frame of a source as JPEG, returned inline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrameRequest {
    /// The source id as `status` shows it.
    pub source: String,
    /// Offset of the frame, ms (the first frame at or after it is returned).
    pub at_ms: u64,
    /// Scale down to at most this many pixels wide (default: the source's width).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_width: Option<u32>,
    /// The node the clip came from (its `node`); another node's source is refused with
    /// `other_node`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// `status`: which sources to list. Without fields, every source (the reply always counts
/// every source by state).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusRequest {
    /// List at most this many sources (in id order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// List only the sources matching this id or glob (as `search`'s `source`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// Every request the daemon understands.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Find clips.
    Search(SearchRequest),
    /// Index footage.
    Ingest(IngestRequest),
    /// Per-source progress (optionally a page of the sources, or those matching a glob).
    Status(StatusRequest),
    /// Remove a source.
    Forget(ForgetRequest),
    /// Counters and timings.
    Stats,
    /// Write a clip and a thumbnail into the export folder.
    Export(ExportRequest),
    /// One frame as JPEG.
    Frame(FrameRequest),
    /// Store a standing query.
    AlertAdd(AlertAddRequest),
    /// List the standing queries.
    AlertList,
    /// Remove a standing query.
    AlertRemove(AlertRemoveRequest),
    /// Stream each new incident as one JSON line, until the client closes.
    AlertsFollow,
    /// Recorded incidents.
    AlertsHistory(AlertsHistoryRequest),
}

impl Request {
    /// The request as one JSON line (without the newline).
    pub fn to_line(&self) -> String {
        let (op, mut body) = match self {
            Request::Search(r) => ("search", serde_json::to_value(r)),
            Request::Ingest(r) => ("ingest", serde_json::to_value(r)),
            Request::Forget(r) => ("forget", serde_json::to_value(r)),
            Request::Export(r) => ("export", serde_json::to_value(r)),
            Request::Frame(r) => ("frame", serde_json::to_value(r)),
            Request::Status(r) => ("status", serde_json::to_value(r)),
            Request::Stats => ("stats", Ok(Value::Object(Default::default()))),
            Request::AlertAdd(r) => ("alert_add", serde_json::to_value(r)),
            Request::AlertList => ("alert_list", Ok(Value::Object(Default::default()))),
            Request::AlertRemove(r) => ("alert_remove", serde_json::to_value(r)),
            Request::AlertsFollow => ("alerts_follow", Ok(Value::Object(Default::default()))),
            Request::AlertsHistory(r) => ("alerts_history", serde_json::to_value(r)),
        };
        let body = body.as_mut().expect("requests serialise");
        body.as_object_mut()
            .expect("object")
            .insert("op".into(), Value::String(op.into()));
        body.to_string()
    }
}

/// Parses one request line. On failure the error reply still carries the request's `id`
/// when one could be read.
pub fn parse_request(line: &[u8]) -> Result<(Option<Value>, Request), (Option<Value>, ErrorBody)> {
    let text = std::str::from_utf8(line).map_err(|e| {
        (
            None,
            ErrorBody::new(ErrorCode::InvalidJson, format!("request is not UTF-8: {e}")),
        )
    })?;
    let value: Value = serde_json::from_str(text).map_err(|e| {
        (
            None,
            ErrorBody::new(ErrorCode::InvalidJson, format!("request is not JSON: {e}")),
        )
    })?;
    let Value::Object(mut obj) = value else {
        return Err((
            None,
            ErrorBody::new(
                ErrorCode::InvalidRequest,
                "request must be a JSON object with an \"op\" field",
            ),
        ));
    };
    let id = obj.remove("id");
    let fail = |code, msg: String| Err((id.clone(), ErrorBody::new(code, msg)));
    let op = match obj.remove("op") {
        Some(Value::String(op)) => op,
        Some(_) => return fail(ErrorCode::InvalidRequest, "\"op\" must be a string".into()),
        None => {
            return fail(
                ErrorCode::InvalidRequest,
                "missing \"op\" (one of search, ingest, status, forget, stats, export, frame, alert_add, alert_list, alert_remove, alerts_follow, alerts_history)"
                    .into(),
            )
        }
    };
    let body = Value::Object(obj);
    let invalid = |e: serde_json::Error| {
        (
            id.clone(),
            ErrorBody::new(ErrorCode::InvalidRequest, format!("{op}: {e}")),
        )
    };
    let no_fields = |body: &Value| match body.as_object().map(|o| o.keys().next().cloned()) {
        Some(Some(k)) => Err((
            id.clone(),
            ErrorBody::new(
                ErrorCode::InvalidRequest,
                format!("{op}: unknown field `{k}`"),
            ),
        )),
        _ => Ok(()),
    };
    let request = match op.as_str() {
        "search" => Request::Search(serde_json::from_value(body).map_err(invalid)?),
        "ingest" => Request::Ingest(serde_json::from_value(body).map_err(invalid)?),
        "forget" => Request::Forget(serde_json::from_value(body).map_err(invalid)?),
        "export" => Request::Export(serde_json::from_value(body).map_err(invalid)?),
        "frame" => Request::Frame(serde_json::from_value(body).map_err(invalid)?),
        "status" => Request::Status(serde_json::from_value(body).map_err(invalid)?),
        "stats" => {
            no_fields(&body)?;
            Request::Stats
        }
        "alert_add" => Request::AlertAdd(serde_json::from_value(body).map_err(invalid)?),
        "alert_list" => {
            no_fields(&body)?;
            Request::AlertList
        }
        "alert_remove" => Request::AlertRemove(serde_json::from_value(body).map_err(invalid)?),
        "alerts_follow" => {
            no_fields(&body)?;
            Request::AlertsFollow
        }
        "alerts_history" => {
            Request::AlertsHistory(serde_json::from_value(body).map_err(invalid)?)
        }
        other => {
            return fail(
                ErrorCode::UnknownOp,
                format!("unknown op {other:?}; expected search, ingest, status, forget, stats, export, frame, alert_add, alert_list, alert_remove, alerts_follow or alerts_history"),
            )
        }
    };
    Ok((id, request))
}

/// Wraps a successful payload into a reply line: `{"ok": true, ...payload, "id": ...}`.
pub fn ok_line(id: Option<Value>, payload: &impl Serialize) -> String {
    let mut v = serde_json::to_value(payload).expect("replies serialise");
    if let Value::Object(obj) = &mut v {
        obj.insert("ok".into(), Value::Bool(true));
        if let Some(id) = id {
            obj.insert("id".into(), id);
        }
    }
    v.to_string()
}

/// An error reply line: `{"ok": false, "error": {"code", "message"}, "id": ...}`.
pub fn error_line(id: Option<Value>, error: &ErrorBody) -> String {
    let mut obj = serde_json::Map::new();
    obj.insert("ok".into(), Value::Bool(false));
    obj.insert(
        "error".into(),
        serde_json::to_value(error).expect("errors serialise"),
    );
    if let Some(id) = id {
        obj.insert("id".into(), id);
    }
    Value::Object(obj).to_string()
}

/// Splits a reply line into its payload or its error.
pub fn parse_reply(line: &str) -> Result<Value, ErrorBody> {
    let v: Value = serde_json::from_str(line).map_err(|e| {
        ErrorBody::new(
            ErrorCode::InvalidJson,
            format!("daemon sent a reply that is not JSON: {e}"),
        )
    })?;
    match v.get("ok") {
        Some(Value::Bool(true)) => Ok(v),
        _ => Err(v
            .get("error")
            .cloned()
            .and_then(|e| serde_json::from_value(e).ok())
            .unwrap_or_else(|| {
                ErrorBody::new(
                    ErrorCode::Internal,
                    format!("malformed error reply: {line}"),
                )
            })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(line: &[u8]) -> ErrorCode {
        parse_request(line).unwrap_err().1.code
    }

    #[test]
    fn requests_round_trip() {
        let reqs = [
            Request::Search(SearchRequest {
                text: Some("a red car".into()),
                k: Some(3),
                region: Some(Region {
                    x: 0.0,
                    y: 0.0,
                    w: 0.3,
                    h: 1.0,
                }),
                ..Default::default()
            }),
            Request::Ingest(IngestRequest {
                paths: vec!["/srv/a.mp4".into()],
                follow: false,
            }),
            Request::Ingest(IngestRequest {
                paths: vec!["/srv/live.ts".into()],
                follow: true,
            }),
            Request::Forget(ForgetRequest {
                source: "/srv/a.mp4".into(),
                node: None,
            }),
            Request::Forget(ForgetRequest {
                source: String::new(),
                node: Some("gpu-2".into()),
            }),
            Request::Status(StatusRequest::default()),
            Request::Stats,
            Request::Export(ExportRequest {
                source: "/srv/a.mp4".into(),
                start_ms: 1000,
                end_ms: 5000,
                best_ms: Some(2000),
                region: Some(Region {
                    x: 0.5,
                    y: 0.0,
                    w: 0.5,
                    h: 1.0,
                }),
                node: None,
            }),
            Request::Frame(FrameRequest {
                source: "/srv/a.mp4".into(),
                at_ms: 2000,
                max_width: None,
                node: Some("gpu-2".into()),
            }),
            Request::AlertAdd(AlertAddRequest {
                name: "van".into(),
                text: "a white van".into(),
                region: Some([0.5, 0.0, 0.5, 1.0]),
                between: Some("22:00-06:00".into()),
                exec: vec!["/opt/hooks/notify".into(), "--loud".into()],
                backfill: true,
                ..Default::default()
            }),
            Request::AlertList,
            Request::AlertRemove(AlertRemoveRequest { name: "van".into() }),
            Request::AlertsFollow,
            Request::AlertsHistory(AlertsHistoryRequest {
                since_ms: Some(1_700_000_000_000),
                alert: None,
            }),
        ];
        for r in reqs {
            assert_eq!(parse_request(r.to_line().as_bytes()).unwrap().1, r);
        }
    }

    #[test]
    fn the_id_is_echoed_even_on_errors() {
        let (id, _) = parse_request(br#"{"op":"status","id":7}"#).unwrap();
        assert_eq!(id, Some(Value::from(7)));
        let (id, e) = parse_request(br#"{"op":"nope","id":"x"}"#).unwrap_err();
        assert_eq!((id, e.code), (Some(Value::from("x")), ErrorCode::UnknownOp));
    }

    #[test]
    fn bad_requests_get_codes() {
        assert_eq!(code(b"not json"), ErrorCode::InvalidJson);
        assert_eq!(code(b"\xff\xfe"), ErrorCode::InvalidJson);
        assert_eq!(code(b"[1,2]"), ErrorCode::InvalidRequest);
        assert_eq!(code(b"{}"), ErrorCode::InvalidRequest);
        assert_eq!(code(br#"{"op":5}"#), ErrorCode::InvalidRequest);
        assert_eq!(
            code(br#"{"op":"search","k":"ten"}"#),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            code(br#"{"op":"search","txt":"x"}"#),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            code(br#"{"op":"status","extra":1}"#),
            ErrorCode::InvalidRequest
        );
        assert_eq!(code(br#"{"op":"ingest"}"#), ErrorCode::InvalidRequest);
        assert_eq!(code(br#"{"op":"fly"}"#), ErrorCode::UnknownOp);
    }

    #[test]
    fn replies_parse_back() {
        let line = ok_line(Some(Value::from(1)), &SearchReply { clips: vec![] });
        assert_eq!(parse_reply(&line).unwrap()["id"], 1);
        let line = error_line(None, &ErrorBody::new(ErrorCode::EmptyQuery, "empty"));
        assert_eq!(parse_reply(&line).unwrap_err().code, ErrorCode::EmptyQuery);
    }
}

#[cfg(test)]
mod fuzz {
    //! Property tests of the request parser: any bytes give a request or an error reply,
    //! never a panic, and every valid request survives a round trip.
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_request(&bytes);
        }

        #[test]
        fn json_shaped_noise_gets_a_code(op in "[a-z]{0,8}", key in "[a-z_]{1,8}", n in any::<i64>(), text in ".{0,40}") {
            let line = serde_json::json!({"op": op, key: n, "text": text}).to_string();
            match parse_request(line.as_bytes()) {
                Ok((_, Request::Search(r))) => prop_assert_eq!(r.text, Some(text)),
                Ok((_, other)) => prop_assert!(false, "unexpected parse of {}: {:?}", line, other),
                Err((_, e)) => prop_assert!(!e.message.is_empty()),
            }
        }

        #[test]
        fn search_requests_round_trip(text in ".{1,80}", k in 1usize..1000, source in proptest::option::of("/[a-z/]{1,20}\\*?"), start in proptest::option::of(0u64..1_000_000)) {
            let r = Request::Search(SearchRequest { text: Some(text), k: Some(k), source, start_ms: start, ..Default::default() });
            prop_assert_eq!(parse_request(r.to_line().as_bytes()).unwrap().1, r);
        }
    }
}
