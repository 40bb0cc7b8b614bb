//! The query stage's last step: hits (frames with scores) become clips, ranked best first.
//!
//! A frame found through several of its views counts once, with its best view's score.
//! A clip grows from its best frame (the seed) over neighbouring hits of the same source:
//! a neighbour joins when it lies within `gap_ms` of the clip's edge and scores within
//! `spread` of the seed. Hits left out become seeds of their own, lower-ranked clips.

use std::collections::HashMap;

use super::Clip;
use crate::index::Hit;
use crate::store::{key_view, split_key};

/// How far below a clip's best score a neighbouring frame may score and still join it:
/// half the distance from the best hit to the median hit, at least 0.01.
pub fn score_spread(hits: &[Hit]) -> f32 {
    if hits.len() < 2 {
        return 0.01;
    }
    let mut scores: Vec<f32> = hits.iter().map(|h| h.score).collect();
    scores.sort_by(|a, b| b.total_cmp(a));
    let top = scores[0];
    let median = scores[scores.len() / 2];
    ((top - median) * 0.5).max(0.01)
}

/// Where a clip (or an incident) whose last matching frame is at `last_ms` ends: one sample
/// interval later, capped at the source's duration when that is known and later than it.
pub fn clip_end(last_ms: u64, interval_ms: u64, duration_ms: Option<u64>) -> u64 {
    let end = last_ms + interval_ms;
    match duration_ms {
        Some(d) if d > last_ms => end.min(d),
        _ => end,
    }
}

/// Groups hits into clips, best first. `source_of` maps a source number to its id, sample
/// interval (ms) and duration (ms); hits of unknown sources are dropped. A clip ends one
/// sample interval after its last frame, capped at the source's duration.
pub fn group_clips(
    hits: &[Hit],
    gap_ms: u64,
    spread: f32,
    source_of: impl Fn(u32) -> Option<(String, u64, Option<u64>)>,
) -> Vec<Clip> {
    // Per source: frames sorted by time, each (offset, score, used, view), a frame scored by
    // its best view.
    let mut by_source: HashMap<u32, Vec<(u64, f32, bool, usize)>> = HashMap::new();
    for h in hits {
        let (no, offset) = split_key(h.key);
        by_source
            .entry(no)
            .or_default()
            .push((offset, h.score, false, key_view(h.key)));
    }
    for frames in by_source.values_mut() {
        frames.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)));
        frames.dedup_by_key(|f| f.0);
    }
    let mut seeds: Vec<(u32, usize, f32)> = by_source
        .iter()
        .flat_map(|(&no, frames)| frames.iter().enumerate().map(move |(i, f)| (no, i, f.1)))
        .collect();
    seeds.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
    let mut clips = Vec::new();
    for (no, seed, score) in seeds {
        let frames = by_source.get_mut(&no).expect("seed from this map");
        if frames[seed].2 {
            continue;
        }
        frames[seed].2 = true;
        let joins = |f: &(u64, f32, bool, usize), edge: u64| {
            !f.2 && f.0.abs_diff(edge) <= gap_ms && f.1 >= score - spread
        };
        let (mut lo, mut hi) = (seed, seed);
        while lo > 0 && joins(&frames[lo - 1], frames[lo].0) {
            lo -= 1;
            frames[lo].2 = true;
        }
        while hi + 1 < frames.len() && joins(&frames[hi + 1], frames[hi].0) {
            hi += 1;
            frames[hi].2 = true;
        }
        let Some((source, interval_ms, duration_ms)) = source_of(no) else {
            continue;
        };
        let end_ms = clip_end(frames[hi].0, interval_ms, duration_ms);
        clips.push(Clip {
            source,
            start_ms: frames[lo].0,
            end_ms,
            best_ms: frames[seed].0,
            view: frames[seed].3,
            region: None,
            score,
            confidence: 0.0,
            start_wall_ms: None,
            end_wall_ms: None,
            node: None,
        });
    }
    clips
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::frame_key;

    fn hit(no: u32, ms: u64, score: f32) -> Hit {
        Hit {
            key: frame_key(no, ms),
            score,
        }
    }

    fn names(no: u32) -> Option<(String, u64, Option<u64>)> {
        Some((format!("/s{no}"), 1000, Some(9500)))
    }

    #[test]
    fn neighbouring_hits_merge_and_far_ones_split() {
        let hits = [
            hit(1, 1000, 0.85),
            hit(1, 2000, 0.9),
            hit(1, 3000, 0.86),
            hit(1, 9000, 0.7),
            hit(2, 2000, 0.8),
        ];
        let clips = group_clips(&hits, 2000, 0.1, names);
        assert_eq!(clips.len(), 3);
        assert_eq!(
            (
                clips[0].source.as_str(),
                clips[0].start_ms,
                clips[0].end_ms,
                clips[0].best_ms
            ),
            ("/s1", 1000, 4000, 2000)
        );
        assert_eq!((clips[1].source.as_str(), clips[1].start_ms), ("/s2", 2000));
        assert_eq!(
            (clips[2].start_ms, clips[2].end_ms),
            (9000, 9500),
            "end capped at the duration"
        );
        assert!(clips.windows(2).all(|w| w[0].score >= w[1].score));
    }

    #[test]
    fn a_clip_stops_where_the_scores_drop() {
        // A matching scene from 10 s to 12 s inside continuous footage.
        let mut hits: Vec<Hit> = (0..20).map(|s| hit(1, s * 1000, 0.2)).collect();
        for (s, h) in hits.iter_mut().enumerate().skip(10).take(3) {
            *h = hit(1, s as u64 * 1000, 0.9);
        }
        let spread = score_spread(&hits);
        let clips = group_clips(&hits, 2000, spread, names);
        assert_eq!((clips[0].start_ms, clips[0].best_ms), (10_000, 10_000));
        assert_eq!(
            clips[0].end_ms, 13_000,
            "one interval after the last matching frame"
        );
        assert!(
            clips.len() >= 2,
            "the low-scoring footage forms separate, lower clips"
        );
        assert!(clips[1].score < clips[0].score);
    }

    #[test]
    fn a_frame_counts_once_with_its_best_view() {
        use crate::store::view_key;
        let v = |view, score| Hit {
            key: view_key(1, 5000, view),
            score,
        };
        let hits = [v(0, 0.3), v(1, 0.9), v(2, 0.5), hit(1, 9000, 0.4)];
        let clips = group_clips(&hits, 2000, 0.01, names);
        assert_eq!(clips.len(), 2, "{clips:?}");
        assert_eq!(
            (clips[0].best_ms, clips[0].view, clips[0].score),
            (5000, 1, 0.9)
        );
        assert_eq!((clips[1].best_ms, clips[1].view), (9000, 0));
    }

    #[test]
    fn unknown_sources_are_dropped() {
        let clips = group_clips(&[hit(3, 0, 1.0)], 2000, 0.01, |_| None);
        assert!(clips.is_empty());
    }
}
