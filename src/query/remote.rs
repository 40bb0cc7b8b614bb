//! The search plan against a shared Milvus (issue 18): the filters go into Milvus as one
//! expression (node, source id or id prefix, offset range, wall-clock range); a filter that
//! selects few rows is scored exactly here, otherwise Milvus's search page is widened until
//! `k` clips are found or the matches run out; the hits of every node are grouped into
//! clips as local ones are.

use std::collections::HashMap;

use super::clips::{group_clips, score_spread};
use super::glob::source_matches;
use super::{Clip, Filter};
use crate::embed::Region;
use crate::index::Hit;
use crate::milvus::{Milvus, MilvusError, RemoteHit, SearchFilter, MAX_SEARCH_LIMIT};
use crate::store::view_key;

/// The Milvus side of `filter`: what Milvus can evaluate itself. A glob is narrowed to the
/// literal prefix of a whole-id pattern; the hits are then checked against the glob here.
pub fn milvus_filter(filter: &Filter) -> SearchFilter {
    let mut f = SearchFilter {
        node: filter.node.clone(),
        start_ms: filter.start_ms,
        end_ms: filter.end_ms,
        after_wall_ms: filter.after_wall_ms,
        before_wall_ms: filter.before_wall_ms,
        region: filter.region,
        ..Default::default()
    };
    if let Some(pattern) = &filter.source {
        match pattern.find(['*', '?', '[']) {
            None => f.source_exact = Some(pattern.clone()),
            // Only a pattern over the whole id (one with a `/`) has a prefix of the id.
            Some(i) if pattern.contains('/') && i > 0 => {
                f.source_prefix = Some(pattern[..i].to_string())
            }
            Some(_) => {}
        }
    }
    f
}

/// The best `k` clips of every node, best first.
pub fn search_remote(
    milvus: &Milvus,
    vector: &[f32],
    k: usize,
    filter: &Filter,
    gap_ms: u64,
) -> Result<Vec<Clip>, MilvusError> {
    let expr = milvus_filter(filter);
    // A filter selecting few rows: fetch them and score them exactly (a bounded transfer,
    // [`Milvus::exact_scan_max_rows`]), as the embedded index does. Milvus's approximate
    // search (an IVF interim index with a fixed nprobe on growing segments) loses recall
    // under a selective filter, and 2.3's REST API takes no search parameters to widen it.
    if expr.expression().is_some() {
        let max_rows = milvus.exact_scan_max_rows();
        if milvus.count_matching(&expr)? <= max_rows as u64 {
            let mut hits = milvus.score_matching(vector, max_rows, &expr)?;
            if let Some(pattern) = &filter.source {
                hits.retain(|h| source_matches(pattern, &h.source));
            }
            return Ok(clips_of(&hits, gap_ms).into_iter().take(k).collect());
        }
    }
    let mut limit = (k * 8).clamp(64, MAX_SEARCH_LIMIT);
    loop {
        let mut hits = milvus.search(vector, limit, &expr)?;
        let complete = hits.len() < limit || limit >= MAX_SEARCH_LIMIT;
        if let Some(pattern) = &filter.source {
            hits.retain(|h| source_matches(pattern, &h.source));
        }
        let clips = clips_of(&hits, gap_ms);
        if clips.len() >= k || complete {
            return Ok(clips.into_iter().take(k).collect());
        }
        limit = (limit * 4).min(MAX_SEARCH_LIMIT);
    }
}

/// Groups hits of any node into clips: each (node, source) gets a number of its own for
/// [`group_clips`] (a frame scored by its best view, as locally), and its clips carry the
/// node, wall-clock times and the best view's region.
fn clips_of(hits: &[RemoteHit], gap_ms: u64) -> Vec<Clip> {
    let mut numbers: HashMap<(&str, &str), u32> = HashMap::new();
    let mut sources: Vec<&RemoteHit> = Vec::new();
    // Each (node, source)'s views' regions, as its rows carry them.
    let mut regions: HashMap<(u32, usize), Region> = HashMap::new();
    let keyed: Vec<Hit> = hits
        .iter()
        .map(|h| {
            let no = *numbers
                .entry((h.node.as_str(), h.source.as_str()))
                .or_insert_with(|| {
                    sources.push(h);
                    (sources.len() - 1) as u32
                });
            if let Some(r) = h.region {
                regions.insert((no, h.view), r);
            }
            Hit {
                key: view_key(no, h.offset_ms, h.view),
                score: h.score,
            }
        })
        .collect();
    let spread = score_spread(&keyed);
    let mut clips = group_clips(&keyed, gap_ms, spread, |no| {
        let h = sources.get(no as usize)?;
        Some((format!("{}\u{0}{}", h.node, h.source), h.interval_ms, None))
    });
    for c in &mut clips {
        let (node, source) = c.source.split_once('\u{0}').expect("joined above");
        let (node, source) = (node.to_string(), source.to_string());
        let no = numbers[&(node.as_str(), source.as_str())];
        c.region = regions.get(&(no, c.view)).copied();
        let start_wall = sources
            .iter()
            .find(|h| h.node == node && h.source == source)
            .and_then(|h| h.start_wall_ms);
        if let Some(w) = start_wall {
            c.start_wall_ms = Some(w + c.start_ms as i64);
            c.end_wall_ms = Some(w + c.end_ms as i64);
        }
        c.source = source;
        c.node = Some(node);
    }
    clips
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(node: &str, source: &str, offset_ms: u64, score: f32) -> RemoteHit {
        RemoteHit {
            node: node.into(),
            source: source.into(),
            offset_ms,
            score,
            start_wall_ms: (node == "b").then_some(1_000_000),
            interval_ms: 1000,
            view: 0,
            region: None,
        }
    }

    #[test]
    fn a_frame_counts_once_by_its_best_view_whose_region_the_clip_carries() {
        let right = Region {
            x: 0.5,
            y: 0.0,
            w: 0.5,
            h: 1.0,
        };
        let view = |offset_ms, view, score, region| RemoteHit {
            view,
            region,
            ..hit("a", "/f/x.mp4", offset_ms, score)
        };
        let hits = [view(1000, 0, 0.5, None), view(1000, 2, 0.9, Some(right))];
        let clips = clips_of(&hits, 1500);
        assert_eq!(clips.len(), 1);
        assert_eq!((clips[0].start_ms, clips[0].best_ms), (1000, 1000));
        assert_eq!(clips[0].view, 2);
        assert_eq!(clips[0].region, Some(right));
    }

    #[test]
    fn one_source_id_on_two_nodes_makes_two_clips_with_their_nodes() {
        let hits = [
            hit("a", "/f/x.mp4", 1000, 0.9),
            hit("a", "/f/x.mp4", 2000, 0.89),
            hit("b", "/f/x.mp4", 1000, 0.8),
        ];
        let clips = clips_of(&hits, 1500);
        assert_eq!(clips.len(), 2);
        assert_eq!(clips[0].node.as_deref(), Some("a"));
        assert_eq!((clips[0].start_ms, clips[0].end_ms), (1000, 3000));
        assert_eq!(clips[0].start_wall_ms, None);
        assert_eq!(clips[1].node.as_deref(), Some("b"));
        assert_eq!(clips[1].source, "/f/x.mp4");
        assert_eq!(clips[1].start_wall_ms, Some(1_001_000));
    }

    #[test]
    fn globs_give_milvus_their_prefix_and_exact_ids_go_whole() {
        let f = |s: &str| Filter {
            source: Some(s.into()),
            ..Default::default()
        };
        assert_eq!(
            milvus_filter(&f("/srv/cam1/*.mp4"))
                .source_prefix
                .as_deref(),
            Some("/srv/cam1/")
        );
        assert_eq!(
            milvus_filter(&f("/srv/a.mp4")).source_exact.as_deref(),
            Some("/srv/a.mp4")
        );
        let name_glob = milvus_filter(&f("cam*"));
        assert_eq!(
            (name_glob.source_exact, name_glob.source_prefix),
            (None, None)
        );
    }
}
