//! Time for live sources: offsets that only increase across reconnects and timestamp
//! resets, and the waits between reconnection attempts.

use std::time::Duration;

use super::LiveKind;

/// Reconnection waits: 1 s, doubling up to a cap, each varied by up to ±20 %.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

/// The first wait after a drop.
const FIRST_WAIT: Duration = Duration::from_secs(1);

impl Backoff {
    /// Waits capped at `max`.
    pub fn new(max: Duration) -> Self {
        Self {
            next: FIRST_WAIT.min(max),
            max,
        }
    }

    /// The wait before the next attempt (then doubled); `jitter` in [-1, 1] varies it ±20 %.
    pub fn next_wait(&mut self, jitter: f64) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        base.mul_f64(1.0 + 0.2 * jitter.clamp(-1.0, 1.0))
    }

    /// After a connection that delivered frames: start again from the first wait.
    pub fn reset(&mut self) {
        self.next = FIRST_WAIT.min(self.max);
    }
}

/// A number in [-1, 1] that differs from call to call (jitter; not for cryptography).
pub(super) fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    (h.finish() % 2001) as f64 / 1000.0 - 1.0
}

/// A stream timestamp further than this from the arrival time is a jump (a reset or a
/// discontinuity): the connection's clock is anchored again on the arrival time.
const JUMP_MS: f64 = 30_000.0;

/// A sender clock (`start_time_realtime`) further than this from ours is not trusted.
const MAX_SKEW_MS: f64 = 3_600_000.0;

/// Turns live frame timestamps into offsets that only increase.
#[derive(Debug, Clone)]
pub struct TimeLine {
    kind: LiveKind,
    /// Wall clock of offset 0 (streams: the first frame ever).
    start_wall_ms: Option<i64>,
    /// The last offset handed out (or committed before a restart).
    last_offset: Option<u64>,
    /// Per connection: the sender's clock of PTS 0, ms since the epoch.
    realtime_ms: Option<f64>,
    /// Per connection: (wall ms, pts ms) of the anchor frame.
    anchor: Option<(f64, f64)>,
    /// Per connection: the last PTS seen, ms.
    last_pts_ms: Option<f64>,
}

impl TimeLine {
    /// A time line resuming after `last_offset` (the source's watermark).
    pub fn new(kind: LiveKind, start_wall_ms: Option<i64>, last_offset: Option<u64>) -> Self {
        Self {
            kind,
            start_wall_ms,
            last_offset,
            realtime_ms: None,
            anchor: None,
            last_pts_ms: None,
        }
    }

    /// A new connection: its timestamps start afresh. `realtime_us` is FFmpeg's
    /// `start_time_realtime` when the protocol gives one.
    pub fn connect(&mut self, realtime_us: Option<i64>) {
        self.realtime_ms = realtime_us.map(|us| us as f64 / 1000.0);
        self.anchor = None;
        self.last_pts_ms = None;
    }

    /// The wall clock of offset 0, once known.
    pub fn start_wall_ms(&self) -> Option<i64> {
        self.start_wall_ms
    }

    /// The offset of a frame with presentation time `pts_ms` (stream time; `None` when
    /// the frame has none) arriving at `now_ms`. Streams: always after the last offset.
    /// Growing files: the presentation time (the sampler drops what was committed).
    pub fn offset(&mut self, pts_ms: Option<f64>, now_ms: i64) -> u64 {
        let now = now_ms as f64;
        match self.kind {
            LiveKind::GrowingFile => {
                let pts = pts_ms.unwrap_or_else(|| self.last_pts_ms.map_or(0.0, |p| p + 40.0));
                let origin = self.anchor.get_or_insert((0.0, pts)).1;
                // A timestamp going backwards continues from the last one.
                let t = match self.last_pts_ms {
                    Some(last) if pts - origin <= last => last + 1.0,
                    _ => (pts - origin).max(0.0),
                };
                self.last_pts_ms = Some(t);
                t.round() as u64
            }
            LiveKind::Stream => {
                let backwards = matches!((pts_ms, self.last_pts_ms), (Some(p), Some(l)) if p < l);
                if pts_ms.is_some() {
                    self.last_pts_ms = pts_ms;
                }
                let sender = match (self.realtime_ms, pts_ms) {
                    (Some(rt), Some(p)) if (rt + p - now).abs() < MAX_SKEW_MS => Some(rt + p),
                    _ => None,
                };
                let by_pts = match (self.anchor, pts_ms) {
                    (Some((aw, ap)), Some(p)) => Some(aw + (p - ap)),
                    _ => None,
                };
                let mut wall = sender.or(by_pts).unwrap_or(now);
                let jump = sender.is_none() && (wall - now).abs() > JUMP_MS;
                if self.anchor.is_none() || backwards || jump {
                    if self.anchor.is_some() {
                        // The sender clock cannot be trusted past a reset either.
                        self.realtime_ms = None;
                        wall = now;
                    }
                    self.anchor = pts_ms.map(|p| (wall, p));
                }
                let start = *self.start_wall_ms.get_or_insert(wall.round() as i64);
                let offset = (wall.round() as i64 - start).max(0) as u64;
                let offset = match self.last_offset {
                    Some(last) if offset <= last => last + 1,
                    _ => offset,
                };
                self.last_offset = Some(offset);
                offset
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_with_bounded_jitter_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(10));
        let waits: Vec<f64> = (0..6).map(|_| b.next_wait(0.0).as_secs_f64()).collect();
        assert_eq!(waits, vec![1.0, 2.0, 4.0, 8.0, 10.0, 10.0]);
        assert_eq!(b.next_wait(1.0).as_secs_f64(), 12.0);
        assert_eq!(b.next_wait(-1.0).as_secs_f64(), 8.0);
        b.reset();
        assert_eq!(b.next_wait(0.0), Duration::from_secs(1));
        for _ in 0..100 {
            let j = jitter();
            assert!((-1.0..=1.0).contains(&j));
        }
    }

    #[test]
    fn stream_offsets_follow_pts_and_stay_monotonic_across_reconnects_and_resets() {
        let mut t = TimeLine::new(LiveKind::Stream, None, None);
        t.connect(None);
        let base = 1_800_000_000_000;
        // 10 fps, arriving in real time; the first frame is offset 0.
        let first: Vec<u64> = (0..20)
            .map(|i| t.offset(Some(5000.0 + i as f64 * 100.0), base + i * 100))
            .collect();
        assert_eq!(first[0], 0);
        assert_eq!(first[19], 1900);
        assert_eq!(t.start_wall_ms(), Some(base));
        // Reconnect 10 s later; the sender's PTS restart from 0.
        t.connect(None);
        let o = t.offset(Some(0.0), base + 12_000);
        assert_eq!(o, 12_000);
        assert_eq!(t.offset(Some(100.0), base + 12_150), 12_100);
        // A PTS reset within a connection re-anchors on the arrival time, never backwards.
        let o = t.offset(Some(50.0), base + 12_200);
        assert!(o > 12_100, "{o}");
        // A jump far ahead re-anchors too.
        let o = t.offset(Some(9e9), base + 12_300);
        assert!((12_200..=12_400).contains(&o), "{o}");
        // Resuming after a restart: offsets go on after the watermark.
        let mut r = TimeLine::new(LiveKind::Stream, Some(base), Some(50_000));
        r.connect(None);
        assert_eq!(r.offset(Some(0.0), base + 40_000), 50_001);
    }

    #[test]
    fn the_sender_clock_is_used_when_sane() {
        let base = 1_800_000_000_000i64;
        let mut t = TimeLine::new(LiveKind::Stream, Some(base), None);
        // The sender says PTS 0 was captured 2 s before base.
        t.connect(Some((base - 2_000) * 1000));
        assert_eq!(t.offset(Some(3_000.0), base + 5_000), 1_000);
        // A sender clock a year off is ignored (arrival time instead).
        let mut t = TimeLine::new(LiveKind::Stream, Some(base), None);
        t.connect(Some(1_000_000));
        assert_eq!(t.offset(Some(3_000.0), base + 5_000), 5_000);
    }

    #[test]
    fn growing_file_offsets_are_presentation_times() {
        let mut t = TimeLine::new(LiveKind::GrowingFile, None, None);
        t.connect(None);
        assert_eq!(t.offset(Some(1_400.0), 0), 0);
        assert_eq!(t.offset(Some(2_400.0), 0), 1_000);
        assert_eq!(t.offset(Some(2_000.0), 0), 1_001);
    }
}
