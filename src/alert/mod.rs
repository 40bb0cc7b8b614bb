//! Standing queries (issue 19): alerts stored in the database, evaluated against each
//! committed batch, grouped into incidents and delivered.
//!
//! One file per job: this one holds the types and the input rules (names, regions, time
//! windows); `book` keeps alerts, per-source evaluation cursors and incidents in their own
//! sled trees; `matcher` scores a batch against every alert with one matrix product and
//! grows incidents; `deliver` logs each incident, hands it to the followers and runs the
//! alert's exec hook; `worker` is the thread that evaluates committed batches beside ingest.

mod book;
mod deliver;
mod matcher;
mod worker;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::embed::Region;
use crate::query::Calibration;
use crate::store::{Store, StoreError};

pub use deliver::IncidentObserver;

/// Confidence an alert needs when `--min-confidence` is not given.
pub const DEFAULT_MIN_CONFIDENCE: f32 = 0.5;

/// Longest alert name, bytes.
pub const MAX_NAME_BYTES: usize = 64;

/// Most alerts a daemon keeps.
pub const MAX_ALERTS: usize = 10_000;

/// `[alerts]`: what exec hooks may run, and how.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSettings {
    /// Folders whose programs an alert's `exec` hook may run; empty: hooks are refused.
    pub exec_dirs: Vec<PathBuf>,
    /// Seconds a hook may run before it is killed.
    pub hook_timeout: f64,
    /// Hooks running at once; more incidents wait for a free one.
    pub hook_concurrency: usize,
}

/// A daily time window in UTC, `HH:MM-HH:MM`; one that ends before it starts wraps past
/// midnight (`22:00-06:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Between {
    /// Minute of the day the window opens.
    pub from_min: u16,
    /// Minute of the day it closes (exclusive).
    pub to_min: u16,
}

impl Between {
    /// Parses `HH:MM-HH:MM`.
    pub fn parse(text: &str) -> Result<Self, AlertError> {
        let bad = || {
            AlertError::Invalid(format!(
                "--between {text:?} is not a daily window: give HH:MM-HH:MM in UTC (e.g. 22:00-06:00; 24-hour clock)"
            ))
        };
        let minute = |t: &str| -> Option<u16> {
            let (h, m) = t.trim().split_once(':')?;
            let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
            (h < 24 && m < 60 && t.trim().len() == 5).then_some(h * 60 + m)
        };
        let (a, b) = text.split_once('-').ok_or_else(bad)?;
        let (from_min, to_min) = (minute(a).ok_or_else(bad)?, minute(b).ok_or_else(bad)?);
        if from_min == to_min {
            return Err(AlertError::Invalid(format!(
                "--between {text:?} is empty: the window opens and closes at the same minute"
            )));
        }
        Ok(Self { from_min, to_min })
    }

    /// Whether a wall-clock time (ms since the epoch, UTC) falls inside the window.
    pub fn contains(&self, wall_ms: i64) -> bool {
        let minute = (wall_ms.rem_euclid(86_400_000) / 60_000) as u16;
        if self.from_min < self.to_min {
            (self.from_min..self.to_min).contains(&minute)
        } else {
            minute >= self.from_min || minute < self.to_min
        }
    }
}

impl std::fmt::Display for Between {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.from_min / 60,
            self.from_min % 60,
            self.to_min / 60,
            self.to_min % 60
        )
    }
}

impl Serialize for Between {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Between {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// What an alert looks for and where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertSpec {
    /// Unique name.
    pub name: String,
    /// What to look for, in words.
    pub text: String,
    /// Only sources matching this id or glob (as search's `source`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The part of the frame the alert watches: only views overlapping it match (the rule
    /// of search's zone, [`crate::query::view_in_zone`]); reported with each incident.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<Region>,
    /// Only frames recorded inside this daily window (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub between: Option<Between>,
    /// Lowest calibrated confidence of a matching frame.
    pub min_confidence: f32,
    /// Program and arguments run with each incident as JSON on standard input (no shell).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exec: Vec<String>,
}

/// A stored alert: its spec, the text's embedding and when it was added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// What it looks for.
    #[serde(flatten)]
    pub spec: AlertSpec,
    /// The text's normalised embedding.
    pub vector: Vec<f32>,
    /// When it was added, ms since the epoch.
    pub created_ms: i64,
}

/// Matching frames of one source close together in time, for one alert: grouped as search
/// groups a clip, emitted once when it closes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// The alert's name.
    pub alert: String,
    /// Source id.
    pub source: String,
    /// Offset of the first matching frame, ms.
    pub start_ms: u64,
    /// The last matching frame plus one sample interval (capped at the duration), ms.
    pub end_ms: u64,
    /// Offset of the best matching frame, ms.
    pub best_ms: u64,
    /// Cosine similarity of the best frame.
    pub score: f32,
    /// Calibrated confidence of the best frame.
    pub confidence: f32,
    /// The alert's region, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<Region>,
    /// Wall-clock time of `start_ms`, when the source's time is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_wall_ms: Option<i64>,
    /// When the incident was recorded, ms since the epoch.
    pub recorded_ms: i64,
}

/// Why an alert operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// A bad input; the message says what and what to do.
    #[error("{0}")]
    Invalid(String),
    /// An alert of that name exists.
    #[error("an alert named {0:?} exists; remove it first (frameseek alert remove {0})")]
    Exists(String),
    /// No alert of that name.
    #[error("no alert named {0:?}; `frameseek alert list` shows them")]
    NotFound(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored record does not parse.
    #[error("alert records: {0}")]
    Corrupt(String),
}

impl From<sled::Error> for AlertError {
    fn from(e: sled::Error) -> Self {
        AlertError::Store(StoreError::from(e))
    }
}

/// The alert stage of a running daemon.
pub struct Alerts {
    stage: Arc<Stage>,
    worker: worker::Worker,
}

/// What the request handlers and the alert thread share.
struct Stage {
    store: Store,
    settings: AlertSettings,
    matcher: Mutex<matcher::Matcher>,
    /// How many alerts exist: a batch is not queued when none does.
    count: AtomicUsize,
    deliver: deliver::Deliver,
}

impl Stage {
    /// Evaluates queued work in order and records what it found in one transaction, then
    /// delivers the new incidents and tells each finished source's caller.
    fn evaluate(&self, work: Vec<worker::Work>) {
        let started = std::time::Instant::now();
        let mut m = self.matcher.lock().expect("alert matcher");
        let mut pending = matcher::Pending::default();
        let (mut frames, mut done) = (0, Vec::new());
        for w in work {
            let evaluated = match w {
                worker::Work::Batch(batch) => {
                    frames += batch.len();
                    m.evaluate(&self.store, &batch, &mut pending)
                }
                worker::Work::Finished(source, tell) => {
                    let closed = m.close_source(&self.store, &source, &mut pending);
                    done.push(tell);
                    closed
                }
            };
            if let Err(e) = evaluated {
                tracing::error!(error = %e, "alerts not evaluated for a batch; they are at the next start");
            }
        }
        match m.commit(&self.store, pending) {
            Ok(incidents) => {
                tracing::debug!(
                    frames,
                    alerts = m.alerts().len(),
                    us = started.elapsed().as_micros() as u64,
                    "alerts evaluated"
                );
                drop(m);
                self.deliver_all(incidents);
            }
            Err(e) => {
                tracing::error!(error = %e, "alert incidents not recorded; they are at the next start")
            }
        }
        for tell in done {
            let _ = tell.send(());
        }
    }

    fn deliver_all(&self, incidents: Vec<(Incident, Vec<String>)>) {
        for (incident, exec) in incidents {
            self.deliver.deliver(&incident, &exec);
        }
    }
}

impl std::fmt::Debug for Alerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerts").finish()
    }
}

impl Alerts {
    /// Loads the stored alerts and their cursors; `observer` sees each new incident (the
    /// daemon's followers). Call [`Alerts::catch_up`] before ingest resumes.
    pub fn open(
        store: Store,
        calibration: Calibration,
        gap_ms: u64,
        settings: AlertSettings,
        observer: IncidentObserver,
    ) -> Result<Self, AlertError> {
        let alerts = book::load_alerts(&store)?;
        let cursors = book::load_cursors(&store)?;
        let count = AtomicUsize::new(alerts.len());
        let matcher = matcher::Matcher::new(calibration, gap_ms, alerts, cursors);
        let deliver = deliver::Deliver::new(&settings, observer);
        Ok(Self {
            stage: Arc::new(Stage {
                store,
                settings,
                matcher: Mutex::new(matcher),
                count,
                deliver,
            }),
            worker: worker::Worker::default(),
        })
    }

    /// Checks an alert's spec against the rules and the settings (name, glob, confidence,
    /// hook program), before its text is embedded.
    pub fn check(&self, spec: &AlertSpec) -> Result<(), AlertError> {
        let name_ok = !spec.name.is_empty()
            && spec.name.len() <= MAX_NAME_BYTES
            && spec
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !name_ok {
            return Err(AlertError::Invalid(format!(
                "alert name {:?}: use 1 to {MAX_NAME_BYTES} letters, digits, '-', '_' or '.'",
                spec.name
            )));
        }
        if spec.text.trim().is_empty() {
            return Err(AlertError::Invalid(
                "alert text is empty: say what to look for".into(),
            ));
        }
        if !(0.0..=1.0).contains(&spec.min_confidence) {
            return Err(AlertError::Invalid(format!(
                "min_confidence must be between 0 and 1, got {}",
                spec.min_confidence
            )));
        }
        if let Some(r) = spec.region {
            Region::checked(r.x, r.y, r.w, r.h).map_err(|e| AlertError::Invalid(e.to_string()))?;
        }
        // Any pattern is a valid glob (as search's); an empty one would match nothing.
        if spec.source.as_ref().is_some_and(|p| p.is_empty()) {
            return Err(AlertError::Invalid(
                "source filter is empty: give a source id or a glob, or leave --source out".into(),
            ));
        }
        if let Some(program) = spec.exec.first() {
            deliver::check_program(program, &self.stage.settings.exec_dirs)?;
        }
        Ok(())
    }

    /// Stores a new alert with its text's embedding. Without `backfill` it looks only at
    /// footage committed from now on; with it, every stored frame is evaluated now. Returns
    /// the alert and the incidents the backfill recorded.
    pub fn add(
        &self,
        spec: AlertSpec,
        vector: Vec<f32>,
        backfill: bool,
    ) -> Result<(Alert, usize), AlertError> {
        self.check(&spec)?;
        let mut m = self.stage.matcher.lock().expect("alert matcher");
        if m.alerts().len() >= MAX_ALERTS {
            return Err(AlertError::Invalid(format!(
                "{MAX_ALERTS} alerts exist, the most a daemon keeps; remove some first"
            )));
        }
        let alert = Alert {
            spec,
            vector,
            created_ms: crate::clock::now_ms(),
        };
        // Without a backfill the alert starts at each source's newest committed frame.
        let starts: Vec<(u32, u64)> = if backfill {
            Vec::new()
        } else {
            self.stage.store.with_sources(|t| {
                t.iter()
                    .filter_map(|r| r.watermark_ms.map(|w| (r.no, w)))
                    .collect()
            })?
        };
        let cursors = book::add_alert(&self.stage.store, &alert, &starts)?;
        m.add(alert.clone(), cursors);
        self.stage.count.store(m.alerts().len(), Ordering::Relaxed);
        let recorded = if backfill {
            let incidents = m.catch_up(&self.stage.store, Some(&alert.spec.name))?;
            let n = incidents.len();
            drop(m);
            self.stage.deliver_all(incidents);
            n
        } else {
            0
        };
        tracing::info!(alert = %alert.spec.name, backfill, recorded, "alert added");
        Ok((alert, recorded))
    }

    /// Every stored alert, by name.
    pub fn list(&self) -> Vec<Alert> {
        self.stage
            .matcher
            .lock()
            .expect("alert matcher")
            .alerts()
            .to_vec()
    }

    /// Removes an alert, its cursors and its open incidents (recorded incidents stay in the
    /// history).
    pub fn remove(&self, name: &str) -> Result<(), AlertError> {
        let mut m = self.stage.matcher.lock().expect("alert matcher");
        if !m.alerts().iter().any(|a| a.spec.name == name) {
            return Err(AlertError::NotFound(name.to_string()));
        }
        book::remove_alert(&self.stage.store, name)?;
        m.remove(name);
        self.stage.count.store(m.alerts().len(), Ordering::Relaxed);
        tracing::info!(alert = name, "alert removed");
        Ok(())
    }

    /// Recorded incidents, oldest first: those recorded at or after `since_ms`, of `alert`
    /// when given.
    pub fn history(
        &self,
        since_ms: Option<i64>,
        alert: Option<&str>,
    ) -> Result<Vec<Incident>, AlertError> {
        book::history(&self.stage.store, since_ms, alert)
    }

    /// Queues a committed batch (`(frame key, vector)`) for the alert thread, which
    /// evaluates it against every alert and delivers the incidents that closed. Waits only
    /// when the queue is full. Errors are logged: ingest goes on.
    pub fn on_commit(&self, frames: &[(u64, Vec<f32>)]) {
        if self.stage.count.load(Ordering::Relaxed) == 0 || frames.is_empty() {
            return;
        }
        self.worker
            .send(&self.stage, worker::Work::Batch(frames.to_vec()));
    }

    /// Closes every open incident of a source whose ingest ended; returns once they are
    /// recorded and delivered (after the source's queued batches).
    pub fn source_finished(&self, source: &str) {
        if self.stage.count.load(Ordering::Relaxed) == 0 {
            return;
        }
        let (tell, told) = std::sync::mpsc::sync_channel(1);
        self.worker.send(
            &self.stage,
            worker::Work::Finished(source.to_string(), tell),
        );
        // An error: the thread is gone, and said why.
        let _ = told.recv();
    }

    /// Evaluates what the alert thread still holds, and stops it and every exec hook still
    /// running (at shutdown, after ingest stopped).
    pub fn stop(&self) {
        self.worker.stop();
        deliver::stop_running_hooks();
    }

    /// At start, before ingest resumes: evaluates the stored frames each alert's cursor has
    /// not reached (a crash between a commit and its evaluation) and closes the incidents of
    /// finished sources. Returns the incidents recorded.
    pub fn catch_up(&self) -> Result<usize, AlertError> {
        let mut m = self.stage.matcher.lock().expect("alert matcher");
        let incidents = m.catch_up(&self.stage.store, None)?;
        drop(m);
        let n = incidents.len();
        self.stage.deliver_all(incidents);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daily_windows_parse_wrap_midnight_and_refuse_nonsense() {
        let night = Between::parse("22:00-06:00").unwrap();
        assert_eq!(night.to_string(), "22:00-06:00");
        let at =
            |h: i64, m: i64| 1_800_000_000_000i64 / 86_400_000 * 86_400_000 + (h * 60 + m) * 60_000;
        assert!(night.contains(at(23, 30)));
        assert!(night.contains(at(0, 0)));
        assert!(night.contains(at(5, 59)));
        assert!(!night.contains(at(6, 0)));
        assert!(!night.contains(at(12, 0)));
        let day = Between::parse("09:15-17:00").unwrap();
        assert!(day.contains(at(9, 15)) && !day.contains(at(17, 0)));
        for bad in [
            "25:00-01:00",
            "22:00",
            "9:00-10:00",
            "10:00-10:00",
            "aa:bb-cc:dd",
        ] {
            let e = Between::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
        let json = serde_json::to_string(&night).unwrap();
        assert_eq!(serde_json::from_str::<Between>(&json).unwrap(), night);
    }
}
