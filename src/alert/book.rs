//! The alerts' records, in three sled trees of the daemon's database: `alerts` (name ->
//! alert), `alert_cursors` (alert and source number -> how far the source's frames were
//! evaluated and the incident still open there) and `alert_incidents` (alert, source and
//! start -> the incident). Cursors and the incidents they close are written in one
//! transaction, and an incident's key is its identity: writing it again changes nothing.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

use super::{Alert, AlertError, Incident};
use crate::store::Store;

const ALERTS: &str = "alerts";
const CURSORS: &str = "alert_cursors";
const INCIDENTS: &str = "alert_incidents";

/// Matching frames of one source still growing into an incident.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(super) struct Run {
    /// First matching frame, ms.
    pub start_ms: u64,
    /// Last matching frame, ms.
    pub last_ms: u64,
    /// Best matching frame, ms.
    pub best_ms: u64,
    /// Its cosine.
    pub best_score: f32,
}

/// How far one alert has evaluated one source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct Cursor {
    /// Offset of the last frame evaluated, ms (`None`: none yet).
    pub evaluated_to: Option<u64>,
    /// The incident open on this source.
    pub open: Option<Run>,
}

fn cursor_key(alert: &str, no: u32) -> Vec<u8> {
    let mut k = alert.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&no.to_be_bytes());
    k
}

fn incident_key(i: &Incident) -> Vec<u8> {
    let mut k = i.alert.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(i.source.as_bytes());
    k.push(0);
    k.extend_from_slice(&i.start_ms.to_be_bytes());
    k
}

fn corrupt(tree: &str, e: impl std::fmt::Display) -> AlertError {
    AlertError::Corrupt(format!("{tree}: {e}"))
}

fn tx_error(e: TransactionError<AlertError>) -> AlertError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => e.into(),
    }
}

/// Every stored alert, by name.
pub(super) fn load_alerts(store: &Store) -> Result<Vec<Alert>, AlertError> {
    let tree = store.extra_tree(ALERTS)?;
    let mut out = Vec::new();
    for kv in tree.iter() {
        let (_, v) = kv?;
        out.push(serde_json::from_slice(&v).map_err(|e| corrupt(ALERTS, e))?);
    }
    Ok(out)
}

/// Every cursor, by (alert, source number).
pub(super) fn load_cursors(store: &Store) -> Result<HashMap<(String, u32), Cursor>, AlertError> {
    let tree = store.extra_tree(CURSORS)?;
    let mut out = HashMap::new();
    for kv in tree.iter() {
        let (k, v) = kv?;
        let split = k
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| corrupt(CURSORS, "bad key"))?;
        let name = String::from_utf8(k[..split].to_vec()).map_err(|e| corrupt(CURSORS, e))?;
        let no = <[u8; 4]>::try_from(&k[split + 1..]).map_err(|e| corrupt(CURSORS, e))?;
        let cursor = serde_json::from_slice(&v).map_err(|e| corrupt(CURSORS, e))?;
        out.insert((name, u32::from_be_bytes(no)), cursor);
    }
    Ok(out)
}

/// Stores a new alert and its starting cursors (`(source number, evaluated to)`) in one
/// transaction, durably; refuses a name in use.
pub(super) fn add_alert(
    store: &Store,
    alert: &Alert,
    starts: &[(u32, u64)],
) -> Result<HashMap<u32, Cursor>, AlertError> {
    let (alerts, cursors) = (store.extra_tree(ALERTS)?, store.extra_tree(CURSORS)?);
    let record = serde_json::to_vec(alert).expect("alerts serialise");
    let name = alert.spec.name.as_str();
    let mut made = HashMap::new();
    for &(no, to) in starts {
        made.insert(
            no,
            Cursor {
                evaluated_to: Some(to),
                open: None,
            },
        );
    }
    (&alerts, &cursors)
        .transaction(|(alerts, cursors)| {
            if alerts.get(name)?.is_some() {
                return Err(ConflictableTransactionError::Abort(AlertError::Exists(
                    name.to_string(),
                )));
            }
            alerts.insert(name, record.as_slice())?;
            for (&no, c) in &made {
                cursors.insert(
                    cursor_key(name, no),
                    serde_json::to_vec(c).expect("cursors serialise"),
                )?;
            }
            Ok(())
        })
        .map_err(tx_error)?;
    store.flush()?;
    Ok(made)
}

/// Removes an alert and its cursors, durably.
pub(super) fn remove_alert(store: &Store, name: &str) -> Result<(), AlertError> {
    let (alerts, cursors) = (store.extra_tree(ALERTS)?, store.extra_tree(CURSORS)?);
    let mut prefix = name.as_bytes().to_vec();
    prefix.push(0);
    let keys: Vec<sled::IVec> = cursors
        .scan_prefix(&prefix)
        .keys()
        .collect::<Result<_, _>>()?;
    (&alerts, &cursors)
        .transaction(|(alerts, cursors)| {
            alerts.remove(name)?;
            for k in &keys {
                cursors.remove(k)?;
            }
            Ok::<_, ConflictableTransactionError<AlertError>>(())
        })
        .map_err(tx_error)?;
    store.flush()?;
    Ok(())
}

/// Writes cursors (`(alert, source number, cursor)`) and incidents in one transaction; an
/// incident whose key exists is left as it is. Durable before it returns when any incident
/// is new. Returns, per incident, whether it was new.
pub(super) fn record<'a>(
    store: &Store,
    cursors: &[(&str, u32, Cursor)],
    incidents: impl Iterator<Item = &'a Incident>,
) -> Result<Vec<bool>, AlertError> {
    let incidents: Vec<(&Incident, Vec<u8>)> = incidents.map(|i| (i, incident_key(i))).collect();
    if cursors.is_empty() && incidents.is_empty() {
        return Ok(Vec::new());
    }
    let (cursor_tree, stored) = (store.extra_tree(CURSORS)?, store.extra_tree(INCIDENTS)?);
    let fresh = (&cursor_tree, &stored)
        .transaction(|(cursor_tree, stored)| {
            for (name, no, c) in cursors {
                cursor_tree.insert(
                    cursor_key(name, *no),
                    serde_json::to_vec(c).expect("cursors serialise"),
                )?;
            }
            let mut fresh = Vec::with_capacity(incidents.len());
            for (i, key) in &incidents {
                let new = stored.get(key)?.is_none();
                if new {
                    stored.insert(
                        key.as_slice(),
                        serde_json::to_vec(i).expect("incidents serialise"),
                    )?;
                }
                fresh.push(new);
            }
            Ok::<_, ConflictableTransactionError<AlertError>>(fresh)
        })
        .map_err(tx_error)?;
    if fresh.contains(&true) {
        store.flush()?;
    }
    Ok(fresh)
}

/// Recorded incidents, oldest first.
pub(super) fn history(
    store: &Store,
    since_ms: Option<i64>,
    alert: Option<&str>,
) -> Result<Vec<Incident>, AlertError> {
    let tree = store.extra_tree(INCIDENTS)?;
    let iter = match alert {
        Some(name) => {
            let mut prefix = name.as_bytes().to_vec();
            prefix.push(0);
            tree.scan_prefix(prefix)
        }
        None => tree.iter(),
    };
    let mut out = Vec::new();
    for kv in iter {
        let (_, v) = kv?;
        let i: Incident = serde_json::from_slice(&v).map_err(|e| corrupt(INCIDENTS, e))?;
        if since_ms.is_none_or(|s| i.recorded_ms >= s) {
            out.push(i);
        }
    }
    out.sort_by_key(|i| (i.recorded_ms, i.start_ms));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incident(start_ms: u64) -> Incident {
        Incident {
            alert: "van".into(),
            source: "/srv/cam1.mp4".into(),
            start_ms,
            end_ms: start_ms + 5000,
            best_ms: start_ms + 1000,
            score: 0.8,
            confidence: 0.9,
            region: None,
            start_wall_ms: None,
            recorded_ms: 1000 + start_ms as i64,
        }
    }

    #[test]
    fn an_incident_is_recorded_once_with_its_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let cursor = Cursor {
            evaluated_to: Some(9000),
            open: None,
        };
        let changed = [("van", 3, cursor)];
        let fresh = record(&store, &changed, [incident(1000), incident(7000)].iter()).unwrap();
        assert_eq!(fresh, vec![true, true]);
        // Recording the same incidents again (a replay after a crash) changes nothing.
        let again = record(&store, &changed, [incident(7000), incident(8000)].iter()).unwrap();
        assert_eq!(again, vec![false, true]);
        assert_eq!(
            load_cursors(&store).unwrap()[&("van".to_string(), 3)],
            cursor
        );
        let all = history(&store, None, None).unwrap();
        assert_eq!(
            all.iter().map(|i| i.start_ms).collect::<Vec<_>>(),
            vec![1000, 7000, 8000]
        );
        assert_eq!(history(&store, Some(5000), None).unwrap().len(), 2);
        assert!(history(&store, None, Some("other")).unwrap().is_empty());
    }
}
