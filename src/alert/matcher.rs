//! Evaluation: a committed batch is scored against every alert with one matrix product
//! (frames × alerts), and each alert's matching frames of a source grow into incidents by the
//! rule search uses for a clip's edges: a matching frame within `clip_gap` of the incident's
//! last frame joins it, and the incident ends one sample interval after its last frame
//! ([`crate::query::clips::clip_end`]). An incident is emitted once, when it closes: when a
//! frame more than `clip_gap` after its last matching frame is evaluated, or when its source
//! ends. The same code replays stored frames at start ([`Matcher::catch_up`]), so a frame is
//! scored identically whether it was evaluated live or after a crash.

use std::collections::HashMap;

use super::book::{self, Cursor, Run};
use super::{Alert, AlertError, Incident};
use crate::query::clips::clip_end;
use crate::query::{source_matches, Calibration};
use crate::store::{split_key, SourceRecord, SourceState, Store};

/// Dot product with [`LANES`] running sums; the one scoring function of live and replayed
/// frames, so both give the same bits. On a CPU with AVX2 the same operations run eight lanes
/// wide ([`dot_avx2`]): the same sums in the same order (no fused multiply-add), so the same
/// bits.
pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { dot_avx2(a, b) };
    }
    dot_lanes(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    dot_lanes(a, b)
}

/// Running sums: four vectors of eight, so the additions of one chunk do not wait on
/// those of the one before.
const LANES: usize = 32;

#[inline(always)]
fn dot_lanes(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (a[..n].chunks_exact(LANES), b[..n].chunks_exact(LANES));
    let (rest_a, rest_b) = (a.remainder(), b.remainder());
    let mut acc = [0.0f32; LANES];
    for (x, y) in a.zip(b) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    let mut half = [0.0f32; 8];
    for (l, v) in acc.iter().enumerate() {
        half[l % 8] += v;
    }
    let mut sum =
        ((half[0] + half[4]) + (half[1] + half[5])) + ((half[2] + half[6]) + (half[3] + half[7]));
    for (x, y) in rest_a.iter().zip(rest_b) {
        sum += x * y;
    }
    sum
}

/// The scores of `frames` (each `dim` long) against the alert matrix (`n` rows of `dim`),
/// row-major: `scores[f * n + a]`. Alert by alert, so each row of the matrix is read once
/// for the whole batch.
pub(super) fn score_matrix(frames: &[&[f32]], matrix: &[f32], dim: usize) -> Vec<f32> {
    let n = matrix.len().checked_div(dim).unwrap_or(0);
    let mut scores = vec![0.0; frames.len() * n];
    for (a, row) in matrix.chunks_exact(dim.max(1)).enumerate() {
        for (f, frame) in frames.iter().enumerate() {
            scores[f * n + a] = dot(frame, row);
        }
    }
    scores
}

/// One step of an alert's evaluation of a source, frames in offset order: returns the
/// run that closed, if any.
fn step(c: &mut Cursor, offset: u64, score: f32, matched: bool, gap_ms: u64) -> Option<Run> {
    c.evaluated_to = Some(offset);
    let mut closed = None;
    if let Some(run) = &mut c.open {
        if offset.saturating_sub(run.last_ms) > gap_ms {
            closed = c.open.take();
        } else if matched {
            run.last_ms = offset;
            if score > run.best_score {
                run.best_ms = offset;
                run.best_score = score;
            }
            return None;
        }
    }
    if matched && c.open.is_none() {
        c.open = Some(Run {
            start_ms: offset,
            last_ms: offset,
            best_ms: offset,
            best_score: score,
        });
    }
    closed
}

/// Alerts, their matrix and cursors, in memory (the truth is in `book`'s trees).
pub(super) struct Matcher {
    calibration: Calibration,
    gap_ms: u64,
    alerts: Vec<Alert>,
    /// Lowest cosine that matches, per alert (its `min_confidence` through the calibration).
    thresholds: Vec<f32>,
    /// The alerts' vectors, one row each.
    matrix: Vec<f32>,
    dim: usize,
    cursors: HashMap<(String, u32), Cursor>,
    /// The cursors as stored: a cursor is written when its open incident changes, or once
    /// it has advanced [`CURSOR_SAVE_MS`] past its stored position (see [`Matcher::commit`]).
    stored: HashMap<(String, u32), Cursor>,
}

/// Footage an alert may evaluate on a source without a match before its cursor is stored
/// again: what a restart re-reads at most, per alert and source.
const CURSOR_SAVE_MS: u64 = 60_000;

/// An incident with the hook of its alert.
pub(super) type Delivery = (Incident, Vec<String>);

impl Matcher {
    pub(super) fn new(
        calibration: Calibration,
        gap_ms: u64,
        alerts: Vec<Alert>,
        cursors: HashMap<(String, u32), Cursor>,
    ) -> Self {
        let mut m = Self {
            calibration,
            gap_ms,
            alerts,
            thresholds: Vec::new(),
            matrix: Vec::new(),
            dim: 0,
            stored: cursors.clone(),
            cursors,
        };
        m.rebuild();
        m
    }

    fn rebuild(&mut self) {
        self.alerts.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        self.dim = self.alerts.first().map_or(0, |a| a.vector.len());
        self.matrix = self.alerts.iter().flat_map(|a| a.vector.clone()).collect();
        self.thresholds = self
            .alerts
            .iter()
            .map(|a| {
                self.calibration
                    .min_score(a.spec.min_confidence)
                    .unwrap_or(f32::NEG_INFINITY)
            })
            .collect();
    }

    pub(super) fn alerts(&self) -> &[Alert] {
        &self.alerts
    }

    pub(super) fn add(&mut self, alert: Alert, cursors: HashMap<u32, Cursor>) {
        for (no, c) in cursors {
            self.cursors.insert((alert.spec.name.clone(), no), c);
            self.stored.insert((alert.spec.name.clone(), no), c);
        }
        self.alerts.push(alert);
        self.rebuild();
    }

    pub(super) fn remove(&mut self, name: &str) {
        self.alerts.retain(|a| a.spec.name != name);
        self.cursors.retain(|(n, _), _| n != name);
        self.stored.retain(|(n, _), _| n != name);
        self.rebuild();
    }

    /// Whether alert `a` looks at a frame of `record` at `offset`.
    fn applies(&self, a: usize, record: &SourceRecord, offset: u64) -> bool {
        let spec = &self.alerts[a].spec;
        if spec
            .source
            .as_ref()
            .is_some_and(|p| !source_matches(p, &record.source))
        {
            return false;
        }
        match spec.between {
            None => true,
            // A frame of unknown time is outside every window (as search's wall filter).
            Some(w) => record
                .start_wall_ms
                .is_some_and(|start| w.contains(start + offset as i64)),
        }
    }

    fn incident(&self, a: usize, record: &SourceRecord, run: Run) -> Delivery {
        let alert = &self.alerts[a];
        let interval_ms = (record.interval * 1000.0).round() as u64;
        (
            Incident {
                alert: alert.spec.name.clone(),
                source: record.source.clone(),
                start_ms: run.start_ms,
                end_ms: clip_end(run.last_ms, interval_ms, record.duration_ms),
                best_ms: run.best_ms,
                score: run.best_score,
                confidence: self.calibration.confidence(run.best_score),
                region: alert.spec.region,
                start_wall_ms: record.start_wall_ms.map(|s| s + run.start_ms as i64),
                recorded_ms: crate::clock::now_ms(),
            },
            alert.spec.exec.clone(),
        )
    }

    /// Records the closed runs with the cursors that must be stored, then keeps the cursors;
    /// returns the incidents that are new.
    ///
    /// A cursor whose only change is how far it has evaluated (no match, no open incident
    /// changed) is stored only every [`CURSOR_SAVE_MS`] of footage: the stored cursor is then
    /// an earlier state of the same evaluation, and a restart replays the frames after it
    /// to the same result (with 1,000 alerts, writing every cursor of every batch would cost
    /// a thousand rows per batch).
    fn commit(
        &mut self,
        store: &Store,
        changed: HashMap<(String, u32), Cursor>,
        closed: Vec<Delivery>,
    ) -> Result<Vec<Delivery>, AlertError> {
        let save: Vec<((String, u32), Cursor)> = changed
            .iter()
            .filter(|(k, c)| match self.stored.get(*k) {
                None => true,
                Some(s) => {
                    s.open != c.open
                        || c.evaluated_to
                            .unwrap_or(0)
                            .saturating_sub(s.evaluated_to.unwrap_or(0))
                            >= CURSOR_SAVE_MS
                }
            })
            .map(|(k, c)| (k.clone(), *c))
            .collect();
        let hooks: HashMap<(String, String, u64), Vec<String>> = closed
            .iter()
            .map(|(i, e)| ((i.alert.clone(), i.source.clone(), i.start_ms), e.clone()))
            .collect();
        let fresh = book::record(store, &save, closed.into_iter().map(|d| d.0).collect())?;
        for (k, c) in save {
            self.stored.insert(k, c);
        }
        for (k, c) in changed {
            self.cursors.insert(k, c);
        }
        Ok(fresh
            .into_iter()
            .map(|i| {
                let exec = hooks
                    .get(&(i.alert.clone(), i.source.clone(), i.start_ms))
                    .cloned()
                    .unwrap_or_default();
                (i, exec)
            })
            .collect())
    }

    /// Evaluates a committed batch.
    pub(super) fn on_commit(
        &mut self,
        store: &Store,
        frames: &[(u64, Vec<f32>)],
    ) -> Result<Vec<Delivery>, AlertError> {
        if self.alerts.is_empty() || frames.is_empty() {
            return Ok(Vec::new());
        }
        let n = self.alerts.len();
        let rows: Vec<&[f32]> = frames.iter().map(|(_, v)| v.as_slice()).collect();
        let scores = score_matrix(&rows, &self.matrix, self.dim);
        // Frames of each source in offset order.
        let mut order: Vec<usize> = (0..frames.len()).collect();
        order.sort_by_key(|&i| frames[i].0);
        let mut by_source: Vec<(u32, Vec<usize>)> = Vec::new();
        for i in order {
            let no = split_key(frames[i].0).0;
            match by_source.last_mut() {
                Some((last, list)) if *last == no => list.push(i),
                _ => by_source.push((no, vec![i])),
            }
        }
        let mut changed: HashMap<(String, u32), Cursor> = HashMap::new();
        let mut closed = Vec::new();
        store.with_sources(|table| {
            for (no, list) in &by_source {
                let Some(record) = table.by_no(*no) else {
                    continue;
                };
                for a in 0..n {
                    let key = (self.alerts[a].spec.name.clone(), *no);
                    let mut c = self.cursors.get(&key).copied().unwrap_or_default();
                    let before = c;
                    // A frame's views (issue 16) are neighbours in offset order: the frame
                    // is evaluated once, as its best view.
                    for views in
                        list.chunk_by(|&i, &j| split_key(frames[i].0).1 == split_key(frames[j].0).1)
                    {
                        let offset = split_key(frames[views[0]].0).1;
                        if c.evaluated_to.is_some_and(|e| offset <= e)
                            || !self.applies(a, record, offset)
                        {
                            continue;
                        }
                        let score = views
                            .iter()
                            .map(|&i| scores[i * n + a])
                            .fold(f32::MIN, f32::max);
                        let matched = score >= self.thresholds[a];
                        if let Some(run) = step(&mut c, offset, score, matched, self.gap_ms) {
                            closed.push(self.incident(a, record, run));
                        }
                    }
                    if c != before {
                        changed.insert(key, c);
                    }
                }
            }
        })?;
        self.commit(store, changed, closed)
    }

    /// Closes the open incidents of `source` (its ingest ended).
    pub(super) fn close_source(
        &mut self,
        store: &Store,
        source: &str,
    ) -> Result<Vec<Delivery>, AlertError> {
        let Some(record) = store.source(source)? else {
            return Ok(Vec::new());
        };
        let mut changed = HashMap::new();
        let mut closed = Vec::new();
        for a in 0..self.alerts.len() {
            let key = (self.alerts[a].spec.name.clone(), record.no);
            if let Some(c) = self.cursors.get(&key) {
                if let Some(run) = c.open {
                    let mut c = *c;
                    c.open = None;
                    changed.insert(key, c);
                    closed.push(self.incident(a, &record, run));
                }
            }
        }
        self.commit(store, changed, closed)
    }

    /// Evaluates the stored frames past each cursor (of alert `only`, or all), and closes the
    /// open incidents of sources that are not being ingested. A source an alert has no
    /// cursor for is read from its first frame: a source that is new to it, or every source
    /// of an alert being backfilled.
    pub(super) fn catch_up(
        &mut self,
        store: &Store,
        only: Option<&str>,
    ) -> Result<Vec<Delivery>, AlertError> {
        let records: Vec<SourceRecord> = store.sources()?;
        let mut changed = HashMap::new();
        let mut closed = Vec::new();
        for a in 0..self.alerts.len() {
            if only.is_some_and(|n| n != self.alerts[a].spec.name) {
                continue;
            }
            for record in &records {
                let key = (self.alerts[a].spec.name.clone(), record.no);
                let mut c = self.cursors.get(&key).copied().unwrap_or_default();
                let before = c;
                if let Some(hi) = record.watermark_ms {
                    let lo = c.evaluated_to.map_or(0, |e| e + 1);
                    let vector = &self.alerts[a].vector;
                    let threshold = self.thresholds[a];
                    let mut runs = Vec::new();
                    let mut failed = None;
                    store.visit_source_vectors(record.no, lo, hi, |k, bytes| {
                        let (_, offset) = split_key(k);
                        if !self.applies(a, record, offset) {
                            return;
                        }
                        let v: Vec<f32> = bytes
                            .chunks_exact(4)
                            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                            .collect();
                        if v.len() != vector.len() {
                            failed = Some(k);
                            return;
                        }
                        let score = dot(&v, vector);
                        if let Some(run) =
                            step(&mut c, offset, score, score >= threshold, self.gap_ms)
                        {
                            runs.push(run);
                        }
                    })?;
                    if let Some(k) = failed {
                        return Err(AlertError::Corrupt(format!(
                            "frame {k}: stored vector of another size"
                        )));
                    }
                    for run in runs {
                        closed.push(self.incident(a, record, run));
                    }
                }
                let ingesting =
                    matches!(record.state, SourceState::Queued | SourceState::Ingesting);
                if !ingesting {
                    if let Some(run) = c.open.take() {
                        closed.push(self.incident(a, record, run));
                    }
                }
                if c != before {
                    changed.insert(key, c);
                }
            }
        }
        self.commit(store, changed, closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_product_gives_each_frame_alert_pair_its_dot_product() {
        let frames: Vec<Vec<f32>> = (0..3)
            .map(|f| (0..19).map(|i| ((f * 19 + i) as f32).sin()).collect())
            .collect();
        let alerts: Vec<Vec<f32>> = (0..4)
            .map(|a| (0..19).map(|i| ((a * 7 + i) as f32).cos()).collect())
            .collect();
        let matrix: Vec<f32> = alerts.iter().flatten().copied().collect();
        let rows: Vec<&[f32]> = frames.iter().map(|v| v.as_slice()).collect();
        let s = score_matrix(&rows, &matrix, 19);
        assert_eq!(s.len(), 12);
        for (f, fv) in frames.iter().enumerate() {
            for (a, av) in alerts.iter().enumerate() {
                let plain: f32 = fv.iter().zip(av).map(|(x, y)| x * y).sum();
                assert!((s[f * 4 + a] - plain).abs() < 1e-4);
                assert_eq!(s[f * 4 + a].to_bits(), dot(fv, av).to_bits());
            }
        }
    }

    #[test]
    fn matching_frames_grow_an_incident_that_closes_after_the_gap() {
        let mut c = Cursor::default();
        let gap = 2000;
        let frames = [
            (0, 0.1, false),
            (1000, 0.8, true),
            (2000, 0.9, true),
            (3000, 0.2, false),
            (4000, 0.85, true),
            (5000, 0.2, false),
            (6000, 0.2, false),
        ];
        let mut closed = Vec::new();
        for (t, s, m) in frames {
            closed.extend(step(&mut c, t, s, m, gap));
        }
        assert!(
            closed.is_empty(),
            "still within the gap of 4000: {closed:?}"
        );
        closed.extend(step(&mut c, 7000, 0.1, false, gap));
        assert_eq!(
            closed,
            vec![Run {
                start_ms: 1000,
                last_ms: 4000,
                best_ms: 2000,
                best_score: 0.9
            }]
        );
        assert_eq!(c.open, None);
        assert_eq!(c.evaluated_to, Some(7000));
        // A match after a long silence opens a new incident.
        assert!(step(&mut c, 20_000, 0.9, true, gap).is_none());
        assert_eq!(c.open.map(|r| r.start_ms), Some(20_000));
    }
}
