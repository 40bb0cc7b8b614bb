//! The sample stage: which decoded frames are embedded. Frames are chosen by presentation
//! time (the first at or after every multiple of the interval), optionally only keyframes,
//! and under the `scene` policy only when the picture changed since the last kept frame.

use std::time::Instant;

use ffmpeg::format::Pixel;
use ffmpeg_next as ffmpeg;

use super::convert::FrameConverter;
use super::{DecodeSummary, SampledFrame};

/// Which frames are embedded, as the configuration names it (`ingest.sampling`, a camera's
/// `sampling`); with the scene keys it makes a [`SamplingPolicy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum SamplingMode {
    /// Every interval.
    #[default]
    Interval,
    /// Keyframes only, at most one per interval.
    Keyframes,
    /// Interval candidates that changed since the last kept frame.
    Scene,
}

crate::setting::named_setting!(SamplingMode, "interval, keyframes or scene", {
    "interval" => Interval,
    "keyframes" => Keyframes,
    "scene" => Scene,
});

impl SamplingMode {
    /// The policy of this mode; `threshold` and `max_gap` are the scene keys.
    pub fn policy(self, threshold: f32, max_gap: f64) -> SamplingPolicy {
        match self {
            Self::Interval => SamplingPolicy::Interval,
            Self::Keyframes => SamplingPolicy::Keyframes,
            Self::Scene => SamplingPolicy::Scene { threshold, max_gap },
        }
    }
}

/// How frames are chosen, per source.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase", tag = "policy")]
pub enum SamplingPolicy {
    /// The first frame at or after every multiple of the interval.
    #[default]
    Interval,
    /// Only keyframes are decoded (much cheaper), at most one per interval.
    Keyframes,
    /// Interval candidates, kept only when a small grey thumbnail changed by more than
    /// `threshold` (mean absolute difference, 0 to 1) since the last kept frame, or when
    /// `max_gap` seconds passed without one.
    Scene {
        /// Change needed to keep a frame.
        threshold: f32,
        /// Seconds after which a frame is kept anyway.
        max_gap: f64,
    },
}

/// Side of the grey thumbnail the scene test compares.
const THUMB: usize = 16;

/// A 16x16 grey thumbnail of an 8-bit YUV or grey frame (block means of the luma plane);
/// `None` for other pixel formats.
fn luma_thumbnail(frame: &ffmpeg::frame::Video) -> Option<[u8; THUMB * THUMB]> {
    let eight_bit_luma = matches!(
        frame.format(),
        Pixel::YUV420P
            | Pixel::YUVJ420P
            | Pixel::YUV422P
            | Pixel::YUVJ422P
            | Pixel::YUV444P
            | Pixel::YUVJ444P
            | Pixel::YUV440P
            | Pixel::YUVJ440P
            | Pixel::YUV411P
            | Pixel::YUV410P
            | Pixel::NV12
            | Pixel::NV21
            | Pixel::GRAY8
    );
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    if !eight_bit_luma || w < THUMB || h < THUMB {
        return None;
    }
    let stride = frame.stride(0);
    let luma = frame.data(0);
    let mut out = [0u8; THUMB * THUMB];
    for ty in 0..THUMB {
        for tx in 0..THUMB {
            // Mean of a 4x4 grid of points inside the cell: cheap, and steady under noise.
            let mut sum = 0u32;
            for sy in 0..4 {
                let y = (ty * h + (2 * sy + 1) * h / 8) / THUMB;
                let row = &luma[y.min(h - 1) * stride..];
                for sx in 0..4 {
                    let x = (tx * w + (2 * sx + 1) * w / 8) / THUMB;
                    sum += u32::from(row[x.min(w - 1)]);
                }
            }
            out[ty * THUMB + tx] = (sum / 16) as u8;
        }
    }
    Some(out)
}

/// The scene test of the `scene` policy (a pass-through for the others): keeps a candidate
/// frame when its grey thumbnail changed enough since the last kept one, or enough time passed.
struct SceneFilter {
    policy: SamplingPolicy,
    last: Option<([u8; THUMB * THUMB], f64)>,
}

impl SceneFilter {
    /// A filter for `policy`.
    fn new(policy: SamplingPolicy) -> Self {
        Self { policy, last: None }
    }

    /// True when the candidate at `at_ms` is worth embedding (remembered as the last kept).
    fn keep(&mut self, frame: &ffmpeg::frame::Video, at_ms: f64) -> bool {
        let SamplingPolicy::Scene { threshold, max_gap } = self.policy else {
            return true;
        };
        let Some(thumb) = luma_thumbnail(frame) else {
            return true;
        };
        let keep = match &self.last {
            None => true,
            Some((prev, at)) => {
                thumbnail_change(prev, &thumb) > threshold || at_ms - at >= max_gap * 1000.0
            }
        };
        if keep {
            self.last = Some((thumb, at_ms));
        }
        keep
    }
}

/// Mean absolute difference of two thumbnails, 0 to 1.
pub fn thumbnail_change(a: &[u8], b: &[u8]) -> f32 {
    let total: u32 = a
        .iter()
        .zip(b)
        .map(|(x, y)| u32::from(x.abs_diff(*y)))
        .sum();
    total as f32 / (a.len().max(1) as f32 * 255.0)
}

/// Decides which frames to keep: the first frame at or after each multiple of the interval.
#[derive(Debug, Clone)]
pub struct IntervalSampler {
    interval_ms: f64,
    next_ms: f64,
    after_ms: Option<u64>,
}

impl IntervalSampler {
    /// A sampler every `interval` seconds, skipping offsets up to `resume_after_ms`.
    pub fn new(interval: f64, resume_after_ms: Option<u64>) -> Self {
        let interval_ms = interval * 1000.0;
        let next_ms = match resume_after_ms {
            Some(w) => ((w as f64 / interval_ms).floor() + 1.0) * interval_ms,
            None => 0.0,
        };
        Self {
            interval_ms,
            next_ms,
            after_ms: resume_after_ms,
        }
    }

    /// The offset the next kept frame must reach, ms.
    pub fn next_ms(&self) -> f64 {
        let after = self.after_ms.map_or(f64::MIN, |a| a as f64);
        self.next_ms.max(after)
    }

    /// True when a frame at `offset_ms` should be kept; advances past it when so.
    pub fn take(&mut self, offset_ms: f64) -> bool {
        if let Some(after) = self.after_ms {
            if offset_ms <= after as f64 {
                return false;
            }
        }
        // Half a millisecond of slack absorbs rounding in timestamp conversions.
        if offset_ms + 0.5 < self.next_ms {
            return false;
        }
        while self.next_ms <= offset_ms + 0.5 {
            self.next_ms += self.interval_ms;
        }
        true
    }
}

/// The sample stage of one source, shared by files and live streams: the interval test on
/// every decoded frame ([`FrameSampler::due`]), then for a due frame the scene test, the
/// conversion to the model's input and the hand-off ([`FrameSampler::pick`]).
pub(crate) struct FrameSampler {
    interval: IntervalSampler,
    scene: SceneFilter,
}

impl FrameSampler {
    /// A sampler every `interval` seconds under `policy`, skipping offsets up to
    /// `resume_after_ms`.
    pub(crate) fn new(interval: f64, resume_after_ms: Option<u64>, policy: SamplingPolicy) -> Self {
        Self {
            interval: IntervalSampler::new(interval, resume_after_ms),
            scene: SceneFilter::new(policy),
        }
    }

    /// True when the frame at `offset_ms` is due (the interval test); advances past it.
    pub(crate) fn due(&mut self, offset_ms: f64) -> bool {
        self.interval.take(offset_ms)
    }

    /// The offset the next due frame must reach, ms.
    pub(crate) fn next_ms(&self) -> f64 {
        self.interval.next_ms()
    }

    /// A due frame: skipped (counted) when the scene test finds it unchanged, else converted
    /// and handed to `hand_on`, with the time of each step counted in `summary`. Returns
    /// what `hand_on` returned (false: stop), true for a skipped frame.
    pub(crate) fn pick(
        &mut self,
        frame: &ffmpeg::frame::Video,
        offset_ms: f64,
        converter: &mut FrameConverter,
        summary: &mut DecodeSummary,
        hand_on: &mut dyn FnMut(SampledFrame) -> bool,
    ) -> Result<bool, ffmpeg::Error> {
        if !self.scene.keep(frame, offset_ms) {
            summary.skipped += 1;
            return Ok(true);
        }
        let mut pixels = Vec::with_capacity(converter.values_per_image());
        let t = Instant::now();
        let regions = converter.convert(frame, &mut pixels)?;
        summary.convert_us += t.elapsed().as_micros() as u64;
        summary.kept += 1;
        let t = Instant::now();
        let go_on = hand_on(SampledFrame {
            offset_ms: offset_ms.round() as u64,
            pixels,
            regions,
        });
        summary.handoff_us += t.elapsed().as_micros() as u64;
        Ok(go_on)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_times(interval: f64, frames: &[f64], resume: Option<u64>) -> Vec<f64> {
        let mut s = IntervalSampler::new(interval, resume);
        frames.iter().copied().filter(|&t| s.take(t)).collect()
    }

    #[test]
    fn ntsc_rate_samples_once_per_second_by_timestamp() {
        let frames: Vec<f64> = (0..1798).map(|i| i as f64 * 1001.0 / 30.0).collect();
        let kept = sample_times(1.0, &frames, None);
        assert_eq!(kept.len(), 60);
        for (k, t) in kept.iter().enumerate() {
            assert!(
                *t >= k as f64 * 1000.0 - 0.5 && *t < k as f64 * 1000.0 + 34.0,
                "sample {k} at {t}"
            );
        }
    }

    #[test]
    fn variable_frame_rate_gaps_do_not_cause_bursts() {
        // 10 fps for 2 s, a 3.5 s gap, then 10 fps again.
        let mut frames: Vec<f64> = (0..20).map(|i| i as f64 * 100.0).collect();
        frames.extend((0..20).map(|i| 5500.0 + i as f64 * 100.0));
        assert_eq!(
            sample_times(1.0, &frames, None),
            vec![0.0, 1000.0, 5500.0, 6000.0, 7000.0]
        );
    }

    #[test]
    fn thumbnail_change_is_a_mean_absolute_difference() {
        assert_eq!(thumbnail_change(&[0, 0], &[0, 0]), 0.0);
        assert!((thumbnail_change(&[0, 255], &[255, 255]) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn resume_skips_what_was_committed() {
        let frames: Vec<f64> = (0..100).map(|i| i as f64 * 100.0).collect();
        assert_eq!(
            sample_times(1.0, &frames, Some(5000)),
            vec![6000.0, 7000.0, 8000.0, 9000.0]
        );
    }
}
