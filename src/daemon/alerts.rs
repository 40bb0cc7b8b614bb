//! The alert requests: `alert_add`, `alert_list`, `alert_remove`, `alerts_history`, and the
//! incident lines `alerts_follow` streams. Each checks what the protocol allows, calls the
//! alert stage and maps its results and errors to the wire.

use std::sync::Arc;

use super::requests::{domain_region, wire_region};
use super::Daemon;
use crate::alert::{Alert, AlertError, AlertSpec, Between, Incident, DEFAULT_MIN_CONFIDENCE};
use crate::protocol::*;

/// Incidents buffered per follower; one that falls further behind is closed (`lagged`).
pub(super) const FOLLOW_BUFFER: usize = 1024;

fn wire_error(e: AlertError) -> ErrorBody {
    let code = match &e {
        AlertError::Invalid(_) | AlertError::Exists(_) => ErrorCode::InvalidRequest,
        AlertError::NotFound(_) => ErrorCode::NotFound,
        AlertError::Store(_) | AlertError::Corrupt(_) => ErrorCode::Internal,
    };
    ErrorBody::new(code, e.to_string())
}

fn wire_alert(a: &Alert) -> AlertInfo {
    AlertInfo {
        name: a.spec.name.clone(),
        text: a.spec.text.clone(),
        source: a.spec.source.clone(),
        region: a.spec.region.map(|r| wire_region(r).into()),
        between: a.spec.between.map(|b| b.to_string()),
        min_confidence: a.spec.min_confidence,
        exec: a.spec.exec.clone(),
        created: crate::clock::format_utc(a.created_ms),
    }
}

/// An incident on the wire (a `alerts_follow` line, an `alerts_history` entry); `node` is
/// this daemon's name when it shares a Milvus collection with others.
pub(super) fn wire_incident(i: &Incident, node: Option<&str>) -> IncidentInfo {
    IncidentInfo {
        alert: i.alert.clone(),
        source: i.source.clone(),
        start_ms: i.start_ms,
        end_ms: i.end_ms,
        best_ms: i.best_ms,
        confidence: i.confidence,
        score: i.score,
        region: i.region.map(|r| wire_region(r).into()),
        start_wall: i.start_wall_ms.map(crate::clock::format_utc),
        node: node.map(str::to_string),
        recorded: crate::clock::format_utc(i.recorded_ms),
        recorded_ms: i.recorded_ms,
    }
}

/// What the daemon gives the alert stage to see each new incident: its wire line, sent to
/// every follower.
pub(super) fn follower_line(i: &Incident, node: Option<&str>) -> Arc<str> {
    serde_json::to_string(&wire_incident(i, node))
        .expect("incidents serialise")
        .into()
}

impl Daemon {
    pub(super) fn alert_add(&self, r: AlertAddRequest) -> Result<AlertAddReply, ErrorBody> {
        let invalid = |m: String| ErrorBody::new(ErrorCode::InvalidRequest, m);
        if r.text.len() > MAX_QUERY_BYTES {
            return Err(invalid(format!(
                "alert text is longer than {MAX_QUERY_BYTES} bytes"
            )));
        }
        let region = r
            .region
            .map(|r| domain_region(Region::from(r)))
            .transpose()?;
        let between = match &r.between {
            Some(text) => Some(Between::parse(text).map_err(wire_error)?),
            None => None,
        };
        let spec = AlertSpec {
            name: r.name,
            text: r.text,
            source: r.source,
            region,
            between,
            min_confidence: r.min_confidence.unwrap_or(DEFAULT_MIN_CONFIDENCE),
            exec: r.exec,
        };
        // Checked before the text is embedded, and again when stored.
        self.alerts.check(&spec).map_err(wire_error)?;
        let vector = self
            .searcher
            .embed_text(&spec.text)
            .map_err(|e| ErrorBody::new(ErrorCode::Internal, e.to_string()))?;
        let (alert, backfilled) = self
            .alerts
            .add(spec, vector, r.backfill)
            .map_err(wire_error)?;
        Ok(AlertAddReply {
            alert: wire_alert(&alert),
            backfilled,
        })
    }

    pub(super) fn alert_list(&self) -> AlertListReply {
        AlertListReply {
            alerts: self.alerts.list().iter().map(wire_alert).collect(),
        }
    }

    pub(super) fn alert_remove(
        &self,
        r: AlertRemoveRequest,
    ) -> Result<AlertRemoveReply, ErrorBody> {
        self.alerts.remove(&r.name).map_err(wire_error)?;
        Ok(AlertRemoveReply { removed: r.name })
    }

    pub(super) fn alerts_history(
        &self,
        r: AlertsHistoryRequest,
    ) -> Result<AlertsHistoryReply, ErrorBody> {
        if let Some(name) = &r.alert {
            if !self.alerts.list().iter().any(|a| &a.spec.name == name)
                && self
                    .alerts
                    .history(None, Some(name))
                    .map_err(wire_error)?
                    .is_empty()
            {
                return Err(wire_error(AlertError::NotFound(name.clone())));
            }
        }
        let incidents = self
            .alerts
            .history(r.since_ms, r.alert.as_deref())
            .map_err(wire_error)?;
        Ok(AlertsHistoryReply {
            incidents: incidents
                .iter()
                .map(|i| wire_incident(i, self.milvus.as_ref().map(|m| m.node())))
                .collect(),
        })
    }
}
