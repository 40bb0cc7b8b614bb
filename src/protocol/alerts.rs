//! The alert requests and replies (issue 19): `alert_add`, `alert_list`, `alert_remove`,
//! `alerts_history`, and the incident lines `alerts_follow` streams.

use serde::{Deserialize, Serialize};

/// Declares a struct with the fields an alert has on the wire both ways (`alert_add` asks
/// with them, `alert_list` shows them): name, text, source, region, window and hook, then the
/// struct's own fields.
macro_rules! alert_fields {
    ($(#[$meta:meta])* pub struct $name:ident { $($own:tt)* }) => {
        $(#[$meta])*
        pub struct $name {
            /// Unique name: 1 to 64 letters, digits, `-`, `_` or `.`.
            pub name: String,
            /// What to look for, in words.
            pub text: String,
            /// Only sources matching this id or glob (as `search`'s `source`).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub source: Option<String>,
            /// The part of the frame the alert watches, `[x, y, w, h]` as fractions of the
            /// frame: only views overlapping it match (as `search`'s `region`).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub region: Option<[f32; 4]>,
            /// Only frames recorded in this daily UTC window, `HH:MM-HH:MM` (may wrap
            /// midnight).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub between: Option<String>,
            /// Program (absolute path inside `alerts.exec_dirs`) and arguments run with each
            /// incident as JSON on standard input.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub exec: Vec<String>,
            $($own)*
        }
    };
}

alert_fields! {
    /// `alert_add`: a standing query.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct AlertAddRequest {
        /// Lowest confidence of a matching frame (default 0.5).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub min_confidence: Option<f32>,
        /// Also evaluate every frame stored now.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        pub backfill: bool,
    }
}

/// `alert_remove`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRemoveRequest {
    /// The alert's name.
    pub name: String,
}

/// `alerts_history`: recorded incidents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsHistoryRequest {
    /// Only incidents recorded at or after this time, ms since the epoch (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<i64>,
    /// Only this alert's incidents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
}

alert_fields! {
    /// An alert on the wire.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct AlertInfo {
        /// Lowest confidence of a matching frame.
        pub min_confidence: f32,
        /// When it was added (UTC, RFC 3339).
        pub created: String,
    }
}

/// Reply to `alert_add`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertAddReply {
    /// The alert as stored.
    pub alert: AlertInfo,
    /// Incidents the backfill recorded (0 without `backfill`).
    pub backfilled: usize,
}

/// Reply to `alert_list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertListReply {
    /// Every alert, by name.
    pub alerts: Vec<AlertInfo>,
}

/// Reply to `alert_remove`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRemoveReply {
    /// The name removed.
    pub removed: String,
}

/// An incident: one line of `alerts_follow`, one entry of `alerts_history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentInfo {
    /// The alert's name.
    pub alert: String,
    /// Source id.
    pub source: String,
    /// First matching frame, ms from the start of the source.
    pub start_ms: u64,
    /// The last matching frame plus one sample interval, ms.
    pub end_ms: u64,
    /// Best matching frame, ms.
    pub best_ms: u64,
    /// Calibrated confidence of the best frame.
    pub confidence: f32,
    /// Cosine similarity of the best frame.
    pub score: f32,
    /// The alert's region `[x, y, w, h]`, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<[f32; 4]>,
    /// Wall-clock time of `start_ms` (UTC, RFC 3339), when the source's time is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_wall: Option<String>,
    /// The daemon (`[daemon] node`) whose footage it is, when daemons share a Milvus
    /// collection (`[index] backend = "milvus"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// When it was recorded (UTC, RFC 3339).
    pub recorded: String,
    /// When it was recorded, ms since the epoch.
    pub recorded_ms: i64,
}

/// Reply to `alerts_history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertsHistoryReply {
    /// Incidents, oldest first.
    pub incidents: Vec<IncidentInfo>,
}
