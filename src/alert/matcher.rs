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
use crate::query::{source_matches, view_in_zone, Calibration};
use crate::store::{key_view, split_key, stored_values, SourceRecord, SourceState, Store};

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

/// One alert's cursor on one source: where its evaluation is, and what is stored.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    /// The evaluation as far as it went.
    now: Cursor,
    /// The cursor as stored (`None`: nothing stored; a replay starts at the first frame).
    stored: Option<Cursor>,
}

impl Slot {
    /// Whether the cursor should be stored after a batch: with each incident it closes, and
    /// once it has evaluated [`CURSOR_SAVE_MS`] of footage past the stored one.
    fn due(&self, closed_one: bool) -> bool {
        let stored_to = self.stored.and_then(|s| s.evaluated_to).unwrap_or(0);
        closed_one || self.now.evaluated_to.unwrap_or(0).saturating_sub(stored_to) >= CURSOR_SAVE_MS
    }
}

/// Alerts, their matrix and cursors, in memory (the truth is in `book`'s trees).
pub(super) struct Matcher {
    calibration: Calibration,
    gap_ms: u64,
    /// Sorted by name; the cursors of each source are in the same order.
    alerts: Vec<Alert>,
    /// Lowest cosine that matches, per alert (its `min_confidence` through the calibration).
    thresholds: Vec<f32>,
    /// The alerts' vectors, one row each.
    matrix: Vec<f32>,
    dim: usize,
    /// Per source number, one slot per alert (the order of `alerts`): a batch walks one
    /// vector, with no key built or hashed per alert.
    sources: HashMap<u32, Vec<Slot>>,
}

/// Footage an alert may evaluate on a source without closing an incident before its cursor
/// is stored again: what a restart re-reads at most, per alert and source.
const CURSOR_SAVE_MS: u64 = 60_000;

/// An incident with the hook of its alert.
pub(super) type Delivery = (Incident, Vec<String>);

/// What evaluations found and have not recorded yet: the cursors to store (alert as its
/// index in `alerts`, source number, cursor) and the incidents that closed. Several
/// evaluations may gather into one, recorded by one [`Matcher::commit`].
#[derive(Default)]
pub(super) struct Pending {
    save: Vec<(usize, u32, Cursor)>,
    closed: Vec<Delivery>,
}

/// Whether `alert` looks at the frames of `record` (its source filter).
fn source_applies(alert: &Alert, record: &SourceRecord) -> bool {
    alert
        .spec
        .source
        .as_ref()
        .is_none_or(|p| source_matches(p, &record.source))
}

/// Whether `alert`, whose source filter passed, looks at a frame of `record` at `offset`.
fn time_applies(alert: &Alert, record: &SourceRecord, offset: u64) -> bool {
    match alert.spec.between {
        None => true,
        // A frame of unknown time is outside every window (as search's wall filter).
        Some(w) => record
            .start_wall_ms
            .is_some_and(|start| w.contains(start + offset as i64)),
    }
}

/// Whether `alert` looks at view `view` of a frame of `record`: without a region every view,
/// with one only views overlapping it, by search's zone rule ([`view_in_zone`]).
fn view_applies(alert: &Alert, record: &SourceRecord, view: usize) -> bool {
    view_in_zone(record, view, alert.spec.region.as_ref())
}

/// A frame's score for one alert: the best of the views it looks at, `None` when it looks at
/// none of them (the frame is evaluated, and does not match).
fn best_view(scores: impl IntoIterator<Item = Option<f32>>) -> Option<f32> {
    scores.into_iter().flatten().reduce(f32::max)
}

/// One step of `c` for a frame scored [`best_view`]: a frame whose views are all outside the
/// alert's region does not match.
fn step_frame(
    c: &mut Cursor,
    offset: u64,
    score: Option<f32>,
    threshold: f32,
    gap_ms: u64,
) -> Option<Run> {
    let matched = score.is_some_and(|s| s >= threshold);
    step(c, offset, score.unwrap_or(f32::MIN), matched, gap_ms)
}

fn incident(calibration: &Calibration, alert: &Alert, record: &SourceRecord, run: Run) -> Delivery {
    let interval_ms = (record.interval * 1000.0).round() as u64;
    (
        Incident {
            alert: alert.spec.name.clone(),
            source: record.source.clone(),
            start_ms: run.start_ms,
            end_ms: clip_end(run.last_ms, interval_ms, record.duration_ms),
            best_ms: run.best_ms,
            score: run.best_score,
            confidence: calibration.confidence(run.best_score),
            region: alert.spec.region,
            start_wall_ms: record.start_wall_ms.map(|s| s + run.start_ms as i64),
            recorded_ms: crate::clock::now_ms(),
        },
        alert.spec.exec.clone(),
    )
}

impl Matcher {
    pub(super) fn new(
        calibration: Calibration,
        gap_ms: u64,
        mut alerts: Vec<Alert>,
        cursors: HashMap<(String, u32), Cursor>,
    ) -> Self {
        alerts.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        let position: HashMap<&str, usize> = alerts
            .iter()
            .enumerate()
            .map(|(i, a)| (a.spec.name.as_str(), i))
            .collect();
        let mut sources: HashMap<u32, Vec<Slot>> = HashMap::new();
        for ((name, no), c) in cursors {
            // A cursor of an alert no longer stored is left out.
            if let Some(&a) = position.get(name.as_str()) {
                sources
                    .entry(no)
                    .or_insert_with(|| vec![Slot::default(); alerts.len()])[a] = Slot {
                    now: c,
                    stored: Some(c),
                };
            }
        }
        let mut m = Self {
            calibration,
            gap_ms,
            alerts,
            thresholds: Vec::new(),
            matrix: Vec::new(),
            dim: 0,
            sources,
        };
        m.rebuild();
        m
    }

    fn rebuild(&mut self) {
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
        let at = self
            .alerts
            .partition_point(|a| a.spec.name < alert.spec.name);
        for slots in self.sources.values_mut() {
            slots.insert(at, Slot::default());
        }
        self.alerts.insert(at, alert);
        let n = self.alerts.len();
        for (no, c) in cursors {
            self.sources
                .entry(no)
                .or_insert_with(|| vec![Slot::default(); n])[at] = Slot {
                now: c,
                stored: Some(c),
            };
        }
        self.rebuild();
    }

    pub(super) fn remove(&mut self, name: &str) {
        let Some(at) = self.alerts.iter().position(|a| a.spec.name == name) else {
            return;
        };
        self.alerts.remove(at);
        for slots in self.sources.values_mut() {
            slots.remove(at);
        }
        self.rebuild();
    }

    /// Records the closed runs with the cursors to store, in one transaction; returns the
    /// incidents that are new. An incident is not delivered twice: one whose key is stored
    /// is not new.
    ///
    /// Storing a cursor only with the incidents it closes and every [`CURSOR_SAVE_MS`] of
    /// footage is enough for exactly once: the stored cursor is always an earlier state of
    /// the same evaluation, so a restart replays the frames after it to the same incidents,
    /// whose keys are stored (with 1,000 alerts, storing every cursor of every batch would
    /// cost a thousand rows per batch).
    pub(super) fn commit(
        &mut self,
        store: &Store,
        pending: Pending,
    ) -> Result<Vec<Delivery>, AlertError> {
        let Pending { save, closed } = pending;
        let rows: Vec<(&str, u32, Cursor)> = save
            .iter()
            .map(|&(a, no, c)| (self.alerts[a].spec.name.as_str(), no, c))
            .collect();
        let fresh = book::record(store, &rows, closed.iter().map(|d| &d.0))?;
        for (a, no, c) in save {
            if let Some(slot) = self.sources.get_mut(&no).and_then(|s| s.get_mut(a)) {
                slot.stored = Some(c);
            }
        }
        Ok(closed
            .into_iter()
            .zip(fresh)
            .filter_map(|(d, new)| new.then_some(d))
            .collect())
    }

    /// Evaluates a committed batch into `pending`.
    pub(super) fn evaluate(
        &mut self,
        store: &Store,
        frames: &[(u64, Vec<f32>)],
        pending: &mut Pending,
    ) -> Result<(), AlertError> {
        if self.alerts.is_empty() || frames.is_empty() {
            return Ok(());
        }
        let n = self.alerts.len();
        // The values as stored, as a catch-up after a crash scores them.
        let stored: Vec<Vec<f32>> = frames.iter().map(|(_, v)| store.as_stored(v)).collect();
        let rows: Vec<&[f32]> = stored.iter().map(Vec::as_slice).collect();
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
        let Pending { save, closed } = pending;
        let Self {
            calibration,
            gap_ms,
            alerts,
            thresholds,
            sources,
            ..
        } = self;
        store.with_sources(|table| {
            for (no, list) in &by_source {
                let Some(record) = table.by_no(*no) else {
                    continue;
                };
                let slots = sources
                    .entry(*no)
                    .or_insert_with(|| vec![Slot::default(); n]);
                for (a, (alert, slot)) in alerts.iter().zip(slots.iter_mut()).enumerate() {
                    if !source_applies(alert, record) {
                        continue;
                    }
                    let mut closed_one = false;
                    // A frame's views (issue 16) are neighbours in offset order: the frame
                    // is evaluated once, as its best view in the alert's region.
                    for views in
                        list.chunk_by(|&i, &j| split_key(frames[i].0).1 == split_key(frames[j].0).1)
                    {
                        let offset = split_key(frames[views[0]].0).1;
                        if slot.now.evaluated_to.is_some_and(|e| offset <= e)
                            || !time_applies(alert, record, offset)
                        {
                            continue;
                        }
                        let score = best_view(views.iter().map(|&i| {
                            view_applies(alert, record, key_view(frames[i].0))
                                .then(|| scores[i * n + a])
                        }));
                        if let Some(run) =
                            step_frame(&mut slot.now, offset, score, thresholds[a], *gap_ms)
                        {
                            closed.push(incident(calibration, alert, record, run));
                            closed_one = true;
                        }
                    }
                    if slot.due(closed_one) {
                        save.push((a, *no, slot.now));
                    }
                }
            }
        })?;
        Ok(())
    }

    /// Closes the open incidents of `source` (its ingest ended) into `pending`.
    pub(super) fn close_source(
        &mut self,
        store: &Store,
        source: &str,
        pending: &mut Pending,
    ) -> Result<(), AlertError> {
        let Some(record) = store.source(source)? else {
            return Ok(());
        };
        if let Some(slots) = self.sources.get_mut(&record.no) {
            for (a, slot) in slots.iter_mut().enumerate() {
                if let Some(run) = slot.now.open.take() {
                    pending.save.push((a, record.no, slot.now));
                    pending
                        .closed
                        .push(incident(&self.calibration, &self.alerts[a], &record, run));
                }
            }
        }
        Ok(())
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
        let n = self.alerts.len();
        let Pending {
            mut save,
            mut closed,
        } = Pending::default();
        for (a, alert) in self.alerts.iter().enumerate() {
            if only.is_some_and(|n| n != alert.spec.name) {
                continue;
            }
            for record in &records {
                let slot = &mut self
                    .sources
                    .entry(record.no)
                    .or_insert_with(|| vec![Slot::default(); n])[a];
                let c = &mut slot.now;
                if let Some(hi) = record
                    .watermark_ms
                    .filter(|_| source_applies(alert, record))
                {
                    let lo = c.evaluated_to.map_or(0, |e| e + 1);
                    let threshold = self.thresholds[a];
                    let mut runs = Vec::new();
                    let mut failed = None;
                    // A frame's views (issue 16) are neighbours in key order: each frame is
                    // evaluated once, as its best view in the alert's region, as on commit.
                    let mut frame: Option<(u64, Option<f32>)> = None;
                    let mut evaluate = |offset: u64, score: Option<f32>| {
                        if let Some(run) = step_frame(c, offset, score, threshold, self.gap_ms) {
                            runs.push(run);
                        }
                    };
                    store.visit_source_vectors(record.no, lo, hi, |k, bytes| {
                        let (_, offset) = split_key(k);
                        if !time_applies(alert, record, offset) {
                            return;
                        }
                        let score = if view_applies(alert, record, key_view(k)) {
                            let v = stored_values(bytes);
                            if v.len() != alert.vector.len() {
                                failed = Some(k);
                                return;
                            }
                            Some(dot(&v, &alert.vector))
                        } else {
                            None
                        };
                        match &mut frame {
                            Some((o, best)) if *o == offset => *best = best_view([*best, score]),
                            _ => {
                                if let Some((o, best)) = frame.replace((offset, score)) {
                                    evaluate(o, best);
                                }
                            }
                        }
                    })?;
                    if let Some((o, best)) = frame {
                        evaluate(o, best);
                    }
                    if let Some(k) = failed {
                        return Err(AlertError::Corrupt(format!(
                            "frame {k}: stored vector of another size"
                        )));
                    }
                    for run in runs {
                        closed.push(incident(&self.calibration, alert, record, run));
                    }
                }
                let ingesting =
                    matches!(record.state, SourceState::Queued | SourceState::Ingesting);
                if !ingesting {
                    if let Some(run) = c.open.take() {
                        closed.push(incident(&self.calibration, alert, record, run));
                    }
                }
                if Some(*c) != slot.stored {
                    save.push((a, record.no, *c));
                }
            }
        }
        self.commit(store, Pending { save, closed })
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

    #[test]
    fn a_cursor_is_stored_with_each_incident_it_closes_and_every_minute_of_footage() {
        let at = |ms: u64| Cursor {
            evaluated_to: Some(ms),
            open: None,
        };
        // Nothing stored: a replay would start at the first frame.
        let mut slot = Slot {
            now: at(CURSOR_SAVE_MS - 200),
            stored: None,
        };
        assert!(!slot.due(false));
        assert!(slot.due(true), "an incident closed");
        slot.now = at(CURSOR_SAVE_MS);
        assert!(slot.due(false));
        slot.stored = Some(slot.now);
        slot.now = at(2 * CURSOR_SAVE_MS - 1);
        assert!(
            !slot.due(false),
            "less than a minute past the stored cursor"
        );
        slot.now = at(2 * CURSOR_SAVE_MS);
        assert!(slot.due(false));
    }

    /// A store with one finished 16:9-like source of two views (left and right half) and six
    /// frames at 1 s: the left view shows what the alerts look for, the right one does not.
    fn left_only_store(dir: &std::path::Path) -> Store {
        use crate::embed::Region;
        use crate::store::{view_key, Fingerprint};
        let store = Store::open(dir).unwrap();
        let rec = store
            .new_source("/srv/wide.mp4", Fingerprint::default(), 1.0, Some(6000))
            .unwrap();
        store
            .update_source("/srv/wide.mp4", |r| {
                r.views = Some(vec![
                    Region::checked(0.0, 0.0, 0.5, 1.0).unwrap(),
                    Region::checked(0.5, 0.0, 0.5, 1.0).unwrap(),
                ]);
                r.state = SourceState::Done;
            })
            .unwrap();
        let (target, grey) = ([1.0f32, 0.0, 0.0, 0.0], [0.0f32, 1.0, 0.0, 0.0]);
        let frames: Vec<(u64, &[f32])> = (0..6u64)
            .flat_map(|s| {
                [
                    (view_key(rec.no, s * 1000, 0), &target[..]),
                    (view_key(rec.no, s * 1000, 1), &grey[..]),
                ]
            })
            .collect();
        store.commit_frames(&frames).unwrap();
        store
    }

    /// Alerts for the target: on the left half, on the right half, and on the whole frame.
    fn zoned_alerts() -> Vec<Alert> {
        use crate::embed::Region;
        [
            ("left", Some(Region::checked(0.0, 0.0, 0.5, 1.0).unwrap())),
            ("right", Some(Region::checked(0.5, 0.0, 0.5, 1.0).unwrap())),
            ("whole", None),
        ]
        .into_iter()
        .map(|(name, region)| Alert {
            spec: super::super::AlertSpec {
                name: name.into(),
                text: "the target".into(),
                source: None,
                region,
                between: None,
                min_confidence: 0.5,
                exec: Vec::new(),
            },
            vector: vec![1.0, 0.0, 0.0, 0.0],
            created_ms: 0,
        })
        .collect()
    }

    fn fired(deliveries: &[Delivery]) -> Vec<(String, u64, u64)> {
        let mut out: Vec<_> = deliveries
            .iter()
            .map(|(i, _)| (i.alert.clone(), i.start_ms, i.best_ms))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn an_alert_with_a_region_matches_only_views_that_overlap_it_live_and_at_catch_up() {
        let calibration = Calibration::uncalibrated(100.0);
        let expected = vec![("left".to_string(), 0, 0), ("whole".to_string(), 0, 0)];

        // Live: the committed batch, then the source's end.
        let dir = tempfile::tempdir().unwrap();
        let store = left_only_store(dir.path());
        let no = store.source("/srv/wide.mp4").unwrap().unwrap().no;
        let batch: Vec<(u64, Vec<f32>)> = store
            .source_keys(no)
            .unwrap()
            .into_iter()
            .map(|k| (k, store.vector(k).unwrap().unwrap()))
            .collect();
        assert_eq!(batch.len(), 12);
        let mut m = Matcher::new(calibration, 2000, zoned_alerts(), HashMap::new());
        let mut pending = Pending::default();
        m.evaluate(&store, &batch, &mut pending).unwrap();
        m.close_source(&store, "/srv/wide.mp4", &mut pending)
            .unwrap();
        let live = m.commit(&store, pending).unwrap();
        assert_eq!(fired(&live), expected, "the right half sees no target");
        assert!(live.iter().all(|(i, _)| i.score > 0.99 && i.end_ms == 6000));

        // Catch-up after a restart: the stored frames, replayed, give the same incidents.
        let dir = tempfile::tempdir().unwrap();
        let store = left_only_store(dir.path());
        let mut m = Matcher::new(calibration, 2000, zoned_alerts(), HashMap::new());
        let replayed = m.catch_up(&store, None).unwrap();
        assert_eq!(fired(&replayed), expected);

        // A source stored before views (its view's place unknown) is not filtered, as search.
        assert!(view_applies(
            &zoned_alerts()[1],
            &SourceRecord::new("/old.mp4", 9, Default::default(), 1.0, None),
            0
        ));
        // A frame none of whose views is in the region does not match, whatever the threshold.
        let mut c = Cursor::default();
        assert!(step_frame(&mut c, 0, best_view([None, None]), f32::NEG_INFINITY, 2000).is_none());
        assert_eq!((c.open, c.evaluated_to), (None, Some(0)));
    }
}
