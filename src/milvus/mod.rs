//! The shared vector engine (issue 18): several daemons write their frames into one Milvus
//! collection and search it as one. Each daemon keeps its own sled store (the truth for what
//! it ingested); the store's outbox ([`crate::store::OutboxList`]) says what Milvus still
//! owes, and [`drain`] sends it.
//!
//! The client speaks Milvus's RESTful API (v1, served on the proxy port by 2.3) through the
//! small HTTP client in [`http`]; docs/ARCHITECTURE.md says why not gRPC. Each row carries
//! the scalar fields `fid` (the frame id, unique across nodes and views: [`frame_id`]),
//! `node`, `src` (source id), `sno` (source number on its node), `off` (offset, ms), `view`
//! (the view of the frame, issue 16), `wall` (wall-clock time, ms, when known), `sw` (the
//! source's wall-clock start), `ivl` (sample interval, ms), and the view's region: `reg`
//! (1 when the row has one: frames stored before views have none), `rx`, `ry`, `rw`, `rh`
//! (its rectangle as fractions of the frame) and `rr`, `rb` (its right and bottom edges, so
//! that a zone filter is a plain comparison).
//!
//! Writes are idempotent: a batch first deletes every row whose `fid` it carries, then
//! inserts; Milvus orders the two by timestamp, so a batch sent twice (a crash between the
//! send and the clearing of its outbox marks) still leaves one row per frame. 2.3's REST
//! API creates collections with an automatic primary key and refuses `upsert` on them,
//! hence the delete-then-insert rather than an upsert by primary key.

pub mod drain;
pub mod http;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use crate::embed::Region;
use crate::store::{key_view, split_key};

/// `[milvus]` in the configuration: where the shared engine is.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MilvusSettings {
    /// `http://HOST:PORT` of the Milvus proxy (RESTful API v1).
    pub uri: String,
    /// The collection every node writes to and searches.
    pub collection: String,
    /// A file holding the token (`user:password` or an API key); empty = none. Never inline.
    #[serde(default)]
    pub token_file: PathBuf,
    /// Seconds a request may take before Milvus counts as unreachable.
    pub timeout: f64,
}

impl Default for MilvusSettings {
    fn default() -> Self {
        Self {
            uri: "http://127.0.0.1:19530".into(),
            collection: "frameseek".into(),
            token_file: PathBuf::new(),
            timeout: 10.0,
        }
    }
}

/// Why a call to Milvus failed.
#[derive(Debug, thiserror::Error)]
pub enum MilvusError {
    /// `milvus.uri` is not usable.
    #[error("milvus.uri {uri:?}: {why}")]
    BadUri {
        /// The configured URI.
        uri: String,
        /// What is wrong.
        why: String,
    },
    /// The token file cannot be read.
    #[error("cannot read milvus.token_file {path}: {source}")]
    Token {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Milvus did not answer (connection refused, timeout).
    #[error("Milvus at {uri} is unreachable: {source}")]
    Unreachable {
        /// The configured URI.
        uri: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An HTTP status other than 200.
    #[error("Milvus at {uri} answered {path} with HTTP {status}: {body}")]
    Http {
        /// The configured URI.
        uri: String,
        /// The API path.
        path: String,
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// Milvus refused the request (its own error code and message).
    #[error("Milvus refused {path} (code {code}): {message}")]
    Refused {
        /// The API path.
        path: String,
        /// Milvus's code.
        code: i64,
        /// Milvus's message.
        message: String,
    },
    /// A reply frameseek cannot read.
    #[error("unexpected reply from Milvus to {path}: {why}")]
    Reply {
        /// The API path.
        path: String,
        /// What was wrong.
        why: String,
    },
    /// The collection exists with another vector size.
    #[error("the Milvus collection {collection} holds {found}-dimensional vectors, but this model makes {expected}: set milvus.collection to another name (one collection per model)")]
    Dimension {
        /// The collection.
        collection: String,
        /// The collection's dimension.
        found: usize,
        /// The model's.
        expected: usize,
    },
}

/// The frame id a row carries in Milvus, unique across nodes and views:
/// `NODE/SOURCE_NO/OFFSET_MS/VIEW`, from the node's name and the frame key. The one place it
/// is computed; it names the view outright rather than the key's bits, so it reads the same
/// whatever the key layout.
pub fn frame_id(node: &str, key: u64) -> String {
    let (no, offset_ms) = split_key(key);
    format!("{node}/{no}/{offset_ms}/{}", key_view(key))
}

/// One frame written to Milvus.
#[derive(Debug, Clone)]
pub struct FrameRow {
    /// The frame key on this node.
    pub key: u64,
    /// The normalised embedding.
    pub vector: Vec<f32>,
    /// The source id.
    pub source: String,
    /// The source's wall-clock start, ms since the epoch, when known.
    pub start_wall_ms: Option<i64>,
    /// The source's sample interval, ms.
    pub interval_ms: u64,
    /// Where in the frame the key's view lies; `None` for frames stored before views.
    pub region: Option<Region>,
}

/// One frame found by a search, from any node.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteHit {
    /// The node that ingested it.
    pub node: String,
    /// Its source id.
    pub source: String,
    /// Its offset, ms.
    pub offset_ms: u64,
    /// Inner product with the query (cosine: both are normalised).
    pub score: f32,
    /// The source's wall-clock start, when known.
    pub start_wall_ms: Option<i64>,
    /// The source's sample interval, ms.
    pub interval_ms: u64,
    /// The view of the frame (0 for the whole frame, and for rows without one).
    pub view: usize,
    /// Where in the frame that view lies; `None` for frames stored before views.
    pub region: Option<Region>,
}

/// The filters of a search, run by Milvus as one boolean expression.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchFilter {
    /// Only this node's frames.
    pub node: Option<String>,
    /// Only this source id.
    pub source_exact: Option<String>,
    /// Only source ids starting with this.
    pub source_prefix: Option<String>,
    /// Lowest offset, ms.
    pub start_ms: Option<u64>,
    /// Highest offset, ms.
    pub end_ms: Option<u64>,
    /// Earliest wall-clock time, ms.
    pub after_wall_ms: Option<i64>,
    /// Latest wall-clock time, ms.
    pub before_wall_ms: Option<i64>,
    /// Only views overlapping this zone of the frame (frames stored before views, whose
    /// view's place is unknown, are kept, as the embedded search keeps them).
    pub region: Option<Region>,
}

/// A string as a Milvus expression literal.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

impl SearchFilter {
    /// The filter as a Milvus boolean expression; `None` when it filters nothing.
    pub fn expression(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(n) = &self.node {
            parts.push(format!("node == {}", quote(n)));
        }
        if let Some(s) = &self.source_exact {
            parts.push(format!("src == {}", quote(s)));
        }
        // Milvus 2.3 matches prefixes only; `%` and `_` in the prefix itself are wildcards
        // to it, so the caller checks each hit against the whole pattern too.
        if let Some(p) = self.source_prefix.as_ref().filter(|p| !p.is_empty()) {
            parts.push(format!("src like {}", quote(&format!("{p}%"))));
        }
        if let Some(v) = self.start_ms {
            parts.push(format!("off >= {v}"));
        }
        if let Some(v) = self.end_ms {
            parts.push(format!("off <= {v}"));
        }
        if let Some(v) = self.after_wall_ms {
            parts.push(format!("wall >= {v}"));
        }
        if let Some(v) = self.before_wall_ms {
            parts.push(format!("wall <= {v}"));
        }
        if let Some(z) = self.region {
            // `Region::overlaps`, strict on every edge. The zone's edges are written as the
            // f64 of their f32, as the rows' fields were, so a shared edge compares equal.
            let edge = |v: f32| f64::from(v);
            parts.push(format!(
                "(reg == 0 or (rx < {} and rr > {} and ry < {} and rb > {}))",
                edge(z.x + z.w),
                edge(z.x),
                edge(z.y + z.h),
                edge(z.y)
            ));
        }
        (!parts.is_empty()).then(|| parts.join(" and "))
    }
}

/// Most rows one Milvus search returns (its `topk` limit).
pub const MAX_SEARCH_LIMIT: usize = 16_384;

/// This node's handle on the shared collection.
#[derive(Debug)]
pub struct Milvus {
    endpoint: http::Endpoint,
    collection: String,
    node: String,
    dim: usize,
    ready: std::sync::atomic::AtomicBool,
}

impl Milvus {
    /// A handle for node `node` (vectors of `dim` components); reads the token file, but
    /// does not contact Milvus (it may be down: the outbox waits for it).
    pub fn new(settings: &MilvusSettings, node: &str, dim: usize) -> Result<Self, MilvusError> {
        let token = if settings.token_file.as_os_str().is_empty() {
            None
        } else {
            let text =
                std::fs::read_to_string(&settings.token_file).map_err(|e| MilvusError::Token {
                    path: settings.token_file.display().to_string(),
                    source: e,
                })?;
            Some(text.trim().to_string())
        };
        Ok(Self {
            endpoint: http::Endpoint::parse(
                &settings.uri,
                token,
                Duration::from_secs_f64(settings.timeout),
            )?,
            collection: settings.collection.clone(),
            node: node.to_string(),
            dim,
            ready: Default::default(),
        })
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The configured URI.
    pub fn uri(&self) -> &str {
        self.endpoint.uri()
    }

    /// The collection's name.
    pub fn collection(&self) -> &str {
        &self.collection
    }

    /// POSTs to `/v1/vector/{path}` and returns the reply's `data`, or Milvus's refusal.
    fn call(&self, path: &str, body: Value) -> Result<Value, MilvusError> {
        let full = format!("/v1/vector/{path}");
        let mut reply = self.endpoint.post(&full, &body)?;
        let code = reply.get("code").and_then(Value::as_i64).unwrap_or(-1);
        if code != 200 && code != 0 {
            let message = reply
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("(no message)")
                .to_string();
            return Err(MilvusError::Refused {
                path: full,
                code,
                message,
            });
        }
        Ok(reply
            .get_mut("data")
            .map(Value::take)
            .unwrap_or(Value::Null))
    }

    /// Creates the collection when it is missing (inner product over normalised vectors,
    /// i.e. cosine) and checks its dimension when it exists. Once per process.
    pub fn ensure_collection(&self) -> Result<(), MilvusError> {
        use std::sync::atomic::Ordering;
        if self.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let described = self.describe()?;
        match described {
            Some(found) if found != self.dim => {
                return Err(MilvusError::Dimension {
                    collection: self.collection.clone(),
                    found,
                    expected: self.dim,
                })
            }
            Some(_) => {}
            None => {
                self.call(
                    "collections/create",
                    json!({
                        "collectionName": self.collection,
                        "dimension": self.dim,
                        "metricType": "IP",
                        "primaryField": "id",
                        "vectorField": "vector",
                    }),
                )?;
                tracing::info!(collection = %self.collection, dim = self.dim, "Milvus collection created");
            }
        }
        self.ready.store(true, Ordering::Release);
        Ok(())
    }

    /// The collection's vector dimension, `None` when it does not exist.
    fn describe(&self) -> Result<Option<usize>, MilvusError> {
        // Describe is a GET with the name in the query string.
        let reply = self.endpoint.get(&format!(
            "/v1/vector/collections/describe?collectionName={}",
            url_component(&self.collection)
        ))?;
        let code = reply.get("code").and_then(Value::as_i64).unwrap_or(-1);
        if code != 200 && code != 0 {
            let message = reply.get("message").and_then(Value::as_str).unwrap_or("");
            if message.contains("not found") || message.contains("not exist") || code == 100 {
                return Ok(None);
            }
            return Err(MilvusError::Refused {
                path: "/v1/vector/collections/describe".into(),
                code,
                message: message.to_string(),
            });
        }
        let fields = reply
            .pointer("/data/fields")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let dim = fields.iter().find_map(|f| {
            let t = f.get("type")?.as_str()?;
            t.strip_prefix("FloatVector(")?
                .strip_suffix(')')?
                .parse()
                .ok()
        });
        dim.map(Some).ok_or_else(|| MilvusError::Reply {
            path: "/v1/vector/collections/describe".into(),
            why: "the collection has no float vector field".into(),
        })
    }

    /// Writes this node's frames: deletes any row with their frame ids, then inserts them
    /// (idempotent: see the module doc).
    pub fn write_frames(&self, rows: &[FrameRow]) -> Result<(), MilvusError> {
        if rows.is_empty() {
            return Ok(());
        }
        let keys: Vec<u64> = rows.iter().map(|r| r.key).collect();
        self.delete_frames(&keys)?;
        let data: Vec<Value> = rows
            .iter()
            .map(|r| {
                let (no, offset) = split_key(r.key);
                let mut row = json!({
                    "vector": r.vector,
                    "fid": frame_id(&self.node, r.key),
                    "node": self.node,
                    "src": r.source,
                    "sno": no,
                    "off": offset,
                    "view": key_view(r.key),
                    "ivl": r.interval_ms,
                    "reg": u8::from(r.region.is_some()),
                });
                if let Some(g) = r.region {
                    row["rx"] = json!(g.x);
                    row["ry"] = json!(g.y);
                    row["rw"] = json!(g.w);
                    row["rh"] = json!(g.h);
                    row["rr"] = json!(g.x + g.w);
                    row["rb"] = json!(g.y + g.h);
                }
                if let Some(sw) = r.start_wall_ms {
                    row["sw"] = json!(sw);
                    row["wall"] = json!(sw + offset as i64);
                }
                row
            })
            .collect();
        let reply = self.call(
            "insert",
            json!({"collectionName": self.collection, "data": data}),
        )?;
        let inserted = reply.get("insertCount").and_then(Value::as_u64);
        if inserted != Some(rows.len() as u64) {
            return Err(MilvusError::Reply {
                path: "/v1/vector/insert".into(),
                why: format!("{} rows sent, insertCount {:?}", rows.len(), inserted),
            });
        }
        Ok(())
    }

    /// Deletes this node's rows of the given frame keys (by filter expression).
    pub fn delete_frames(&self, keys: &[u64]) -> Result<(), MilvusError> {
        if keys.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = keys
            .iter()
            .map(|&k| quote(&frame_id(&self.node, k)))
            .collect();
        self.delete_where(&format!("fid in [{}]", ids.join(",")))
    }

    /// Deletes every row of node `node` (a retired server: `forget --node`).
    pub fn delete_node(&self, node: &str) -> Result<(), MilvusError> {
        self.ensure_collection()?;
        self.delete_where(&format!("node == {}", quote(node)))
    }

    fn delete_where(&self, filter: &str) -> Result<(), MilvusError> {
        self.call(
            "delete",
            json!({"collectionName": self.collection, "filter": filter}),
        )?;
        Ok(())
    }

    /// Rows in the collection, of one node or of all.
    pub fn count(&self, node: Option<&str>) -> Result<u64, MilvusError> {
        let filter = match node {
            Some(n) => format!("node == {}", quote(n)),
            None => "sno >= 0".to_string(),
        };
        self.count_where(&filter)
    }

    /// Rows that pass `filter` (all rows when it filters nothing).
    pub fn count_matching(&self, filter: &SearchFilter) -> Result<u64, MilvusError> {
        self.count_where(&filter.expression().unwrap_or_else(|| "sno >= 0".into()))
    }

    fn count_where(&self, filter: &str) -> Result<u64, MilvusError> {
        let data = self.call(
            "query",
            json!({"collectionName": self.collection, "filter": filter, "outputFields": ["count(*)"], "limit": 0}),
        )?;
        let n = data.pointer("/0/count(*)").and_then(|v| match v {
            Value::String(s) => s.parse().ok(),
            v => v.as_u64(),
        });
        n.ok_or_else(|| MilvusError::Reply {
            path: "/v1/vector/query".into(),
            why: format!("no count in {data}"),
        })
    }

    /// The node that ingested `source`, when any row of it is in the collection.
    pub fn node_of_source(&self, source: &str) -> Result<Option<String>, MilvusError> {
        let data = self.call(
            "query",
            json!({"collectionName": self.collection, "filter": format!("src == {}", quote(source)), "outputFields": ["node"], "limit": 1}),
        )?;
        Ok(data
            .pointer("/0/node")
            .and_then(Value::as_str)
            .map(str::to_string))
    }

    /// Most rows [`Self::score_matching`] fetches: a bounded transfer (about a million
    /// vector components, at most [`MAX_SEARCH_LIMIT`] rows).
    pub fn exact_scan_max_rows(&self) -> usize {
        (EXACT_SCAN_MAX_COMPONENTS / self.dim.max(1)).clamp(1, MAX_SEARCH_LIMIT)
    }

    /// Every row that passes `filter` (at most `limit` of them), scored exactly against
    /// `vector` here, best first: the exact path for selective filters, since Milvus's
    /// approximate search loses recall under them and 2.3's REST API cannot widen it.
    pub fn score_matching(
        &self,
        vector: &[f32],
        limit: usize,
        filter: &SearchFilter,
    ) -> Result<Vec<RemoteHit>, MilvusError> {
        let data = self.call(
            "query",
            json!({
                "collectionName": self.collection,
                "filter": filter.expression().unwrap_or_else(|| "sno >= 0".into()),
                "outputFields": ["node", "src", "off", "sw", "ivl", "view", "reg", "rx", "ry", "rw", "rh", "vector"],
                "limit": limit.clamp(1, MAX_SEARCH_LIMIT),
            }),
        )?;
        let rows = data.as_array().cloned().unwrap_or_default();
        let mut hits = rows
            .iter()
            .map(|r| {
                let stored = r
                    .get("vector")
                    .and_then(Value::as_array)
                    .filter(|v| v.len() == vector.len())
                    .ok_or_else(|| MilvusError::Reply {
                        path: "/v1/vector/query".into(),
                        why: format!("a row without a {}-component vector", vector.len()),
                    })?;
                let score = stored
                    .iter()
                    .zip(vector)
                    .map(|(a, b)| a.as_f64().unwrap_or(0.0) as f32 * b)
                    .sum();
                hit_of(r, score, "/v1/vector/query")
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Equal scores (identical frames) in a fixed order: earliest frame first, as the
        // embedded exact scan, which walks keys in order.
        hits.sort_by(|a, b| {
            (b.score.total_cmp(&a.score)).then_with(|| {
                (&a.node, &a.source, a.offset_ms).cmp(&(&b.node, &b.source, b.offset_ms))
            })
        });
        Ok(hits)
    }

    /// The `limit` rows nearest to `vector` that pass `filter`, best first.
    pub fn search(
        &self,
        vector: &[f32],
        limit: usize,
        filter: &SearchFilter,
    ) -> Result<Vec<RemoteHit>, MilvusError> {
        let mut body = json!({
            "collectionName": self.collection,
            "vector": vector,
            "limit": limit.clamp(1, MAX_SEARCH_LIMIT),
            "outputFields": ["node", "src", "off", "sw", "ivl", "view", "reg", "rx", "ry", "rw", "rh"],
        });
        if let Some(expr) = filter.expression() {
            body["filter"] = json!(expr);
        }
        let data = self.call("search", body)?;
        let rows = data.as_array().cloned().unwrap_or_default();
        rows.iter()
            .map(|r| {
                let score = r.get("distance").and_then(Value::as_f64).unwrap_or(0.0) as f32;
                hit_of(r, score, "/v1/vector/search")
            })
            .collect()
    }
}

/// Vector components [`Milvus::score_matching`] fetches at most (10–20 MB of JSON, well
/// under the HTTP client's reply limit).
const EXACT_SCAN_MAX_COMPONENTS: usize = 1 << 20;

/// A row of a search or query reply as a hit with `score`.
fn hit_of(r: &Value, score: f32, path: &str) -> Result<RemoteHit, MilvusError> {
    let bad = |why: String| MilvusError::Reply {
        path: path.into(),
        why,
    };
    let text = |f: &str| r.get(f).and_then(Value::as_str).map(str::to_string);
    let num = |f: &str| r.get(f).and_then(Value::as_i64);
    let real = |f: &str| r.get(f).and_then(Value::as_f64).map(|v| v as f32);
    let region = match (num("reg"), real("rx"), real("ry"), real("rw"), real("rh")) {
        (Some(1), Some(x), Some(y), Some(w), Some(h)) => Some(Region { x, y, w, h }),
        _ => None,
    };
    Ok(RemoteHit {
        node: text("node").ok_or_else(|| bad(format!("a row without node: {r}")))?,
        source: text("src").ok_or_else(|| bad(format!("a row without src: {r}")))?,
        offset_ms: num("off").ok_or_else(|| bad(format!("a row without off: {r}")))? as u64,
        score,
        start_wall_ms: num("sw"),
        interval_ms: num("ivl").unwrap_or(1000).max(1) as u64,
        view: num("view").unwrap_or(0).max(0) as usize,
        region,
    })
}

/// Percent-encodes a query-string component.
fn url_component(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_one_expression_with_quoted_strings() {
        assert_eq!(SearchFilter::default().expression(), None);
        let f = SearchFilter {
            node: Some("gpu-2".into()),
            source_prefix: Some("/footage/cam \"1\"/".into()),
            start_ms: Some(1000),
            end_ms: Some(5000),
            after_wall_ms: Some(-5),
            before_wall_ms: Some(9),
            ..Default::default()
        };
        assert_eq!(
            f.expression().unwrap(),
            r#"node == "gpu-2" and src like "/footage/cam \"1\"/%" and off >= 1000 and off <= 5000 and wall >= -5 and wall <= 9"#
        );
        let exact = SearchFilter {
            source_exact: Some(r"C:\a.mp4".into()),
            ..Default::default()
        };
        assert_eq!(exact.expression().unwrap(), r#"src == "C:\\a.mp4""#);
        let zone = SearchFilter {
            region: Some(Region {
                x: 0.5,
                y: 0.0,
                w: 0.5,
                h: 0.25,
            }),
            ..Default::default()
        };
        assert_eq!(
            zone.expression().unwrap(),
            "(reg == 0 or (rx < 1 and rr > 0.5 and ry < 0.25 and rb > 0))"
        );
    }

    #[test]
    fn frame_ids_differ_across_nodes_keys_and_views() {
        use crate::store::view_key;
        assert_eq!(frame_id("a", view_key(3, 2000, 5)), "a/3/2000/5");
        let k = view_key(1, 1000, 0);
        assert_ne!(frame_id("a", k), frame_id("b", k));
        assert_ne!(frame_id("a", k), frame_id("a", view_key(1, 2000, 0)));
        // The views of one frame are rows of their own.
        assert_ne!(frame_id("a", k), frame_id("a", view_key(1, 1000, 1)));
        assert_eq!(url_component("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn a_missing_token_file_is_named() {
        let settings = MilvusSettings {
            token_file: "/nonexistent/token".into(),
            ..Default::default()
        };
        let e = Milvus::new(&settings, "n", 4).unwrap_err().to_string();
        assert!(e.contains("milvus.token_file /nonexistent/token"), "{e}");
    }
}
