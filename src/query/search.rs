//! The search plan: a source filter resolved to source numbers, a key predicate for
//! offsets, retention floors and wall-clock ranges, then either an exact scan of the selected
//! footage (a selective filter) or a graph search widened until `k` clips are found.

use std::collections::HashSet;

use super::clips::{group_clips, score_spread};
use super::glob::{literal_tail, source_matches};
use super::Clip;
use crate::catalog::{Catalog, CatalogError};
use crate::embed::Region;
use crate::index::Hit;
use crate::store::{key_view, split_key, stored_dot, SourceRecord, SourceTable, Store, StoreError};

/// Largest number of frames a source filter may select for an exact scan instead of a
/// graph search.
pub const EXACT_SCAN_MAX_FRAMES: u64 = 100_000;

/// How many views a frame is assumed to have when the graph search's first candidate count
/// is chosen (the default view set's three, for 16:9); the search widens when it was too few.
const VIEWS_PER_FRAME_GUESS: usize = 3;

/// Filters applied inside the vector search.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Exact source id, or a glob (see [`super::source_matches`]).
    pub source: Option<String>,
    /// Lowest offset in ms.
    pub start_ms: Option<u64>,
    /// Highest offset in ms.
    pub end_ms: Option<u64>,
    /// Earliest wall-clock time, ms since the epoch.
    pub after_wall_ms: Option<i64>,
    /// Latest wall-clock time, ms since the epoch.
    pub before_wall_ms: Option<i64>,
    /// A zone of the frame: only views overlapping it are searched (frames stored before
    /// views, whose view's place is unknown, are kept).
    pub region: Option<Region>,
    /// Only this node's frames (a shared Milvus; the local index holds only this node's).
    pub node: Option<String>,
}

/// Whether view `view` of a source's frames can pass a zone filter: with a zone, only a view
/// whose region overlaps it (shares some area; touching edges do not count); a source stored
/// before views, whose one view's place is unknown, always passes. The one rule of search's
/// `region` and of an alert's (`alert::matcher`), so both keep the same views.
pub fn view_in_zone(record: &SourceRecord, view: usize, zone: Option<&Region>) -> bool {
    let Some(zone) = zone else {
        return true;
    };
    match &record.views {
        Some(regions) => regions.get(view).is_some_and(|r| r.overlaps(zone)),
        None => true,
    }
}

/// True when a source filter selecting `selected` of `total` indexed frames is scored
/// exactly (at most [`EXACT_SCAN_MAX_FRAMES`] and at most 5 % of the index).
pub fn exact_scan_applies(selected: u64, total: u64) -> bool {
    selected <= EXACT_SCAN_MAX_FRAMES && selected * 20 <= total
}

/// Scores every stored frame of the sources `nos` with an offset in `offsets` (inclusive)
/// that passes `pass` against a normalised `query` (dot product = cosine), best first: the
/// exact path of [`search`], public so benchmarks measure the same code.
pub fn score_exactly(
    store: &Store,
    nos: impl IntoIterator<Item = u32>,
    offsets: (u64, u64),
    query: &[f32],
    pass: &(dyn Fn(u64) -> bool + Sync),
) -> Result<Vec<Hit>, StoreError> {
    let ranges: Vec<(u32, u64, u64)> = nos
        .into_iter()
        .map(|no| (no, offsets.0, offsets.1))
        .collect();
    score_ranges(store, &ranges, query, pass)
}

/// Ranges below which [`score_ranges`] reads them on one thread.
const PARALLEL_RANGES: usize = 64;

/// Scores the stored frames of each `(source number, lowest offset, highest offset)` range
/// that pass `pass`, best first. Many ranges (a glob over thousands of sources: one tree
/// seek each) are read in runs of neighbours on the current rayon pool's threads.
pub fn score_ranges(
    store: &Store,
    ranges: &[(u32, u64, u64)],
    query: &[f32],
    pass: &(dyn Fn(u64) -> bool + Sync),
) -> Result<Vec<Hit>, StoreError> {
    let score = |run: &[(u32, u64, u64)]| -> Result<Vec<Hit>, StoreError> {
        let mut hits = Vec::new();
        store.visit_ranges_vectors(run, |key, bytes| {
            if pass(key) {
                let score = stored_dot(bytes, query);
                hits.push(Hit { key, score });
            }
        })?;
        Ok(hits)
    };
    let mut hits = if ranges.len() < PARALLEL_RANGES {
        score(ranges)?
    } else {
        use rayon::prelude::*;
        let run = ranges
            .len()
            .div_ceil(4 * rayon::current_num_threads())
            .max(PARALLEL_RANGES / 4);
        let runs = ranges
            .par_chunks(run)
            .map(score)
            .collect::<Result<Vec<_>, _>>()?;
        runs.concat()
    };
    hits.sort_by(|a, b| b.score.total_cmp(&a.score));
    Ok(hits)
}

/// True when a source filter has no glob character, so it matches one source id exactly
/// (see [`source_matches`]).
fn is_literal(pattern: &str) -> bool {
    !pattern.contains(['*', '?', '['])
}

/// The offsets of a source that can pass `filter`: the filter's offset range, above the
/// source's retention floor, inside the wall-clock range (a source whose time is unknown
/// has none when a wall-clock range is set); `None` when no offset can pass.
fn offsets_of(r: &SourceRecord, filter: &Filter) -> Option<(u64, u64)> {
    let mut lo = filter
        .start_ms
        .unwrap_or(0)
        .max(r.retain_from_ms.unwrap_or(0));
    let mut hi = filter.end_ms.unwrap_or(u64::MAX);
    if filter.after_wall_ms.is_some() || filter.before_wall_ms.is_some() {
        let start = r.start_wall_ms?;
        if let Some(a) = filter.after_wall_ms {
            lo = lo.max(a.saturating_sub(start).max(0) as u64);
        }
        if let Some(b) = filter.before_wall_ms {
            let d = b.saturating_sub(start);
            if d < 0 {
                return None;
            }
            hi = hi.min(d as u64);
        }
    }
    (lo <= hi).then_some((lo, hi))
}

/// The best `k` clips for a normalised query vector, with the filter applied inside the
/// vector search; widens the search until `k` clips are found or the matches run out.
pub fn search(
    catalog: &Catalog,
    query: &[f32],
    k: usize,
    filter: &Filter,
    gap_ms: u64,
) -> Result<Vec<Clip>, CatalogError> {
    catalog
        .store()
        .with_sources(|table| search_in(catalog, table, query, k, filter, gap_ms))?
}

/// [`search`] over the source records in memory (`table`), which it reads in place.
fn search_in(
    catalog: &Catalog,
    sources: &SourceTable,
    query: &[f32],
    k: usize,
    filter: &Filter,
    gap_ms: u64,
) -> Result<Vec<Clip>, CatalogError> {
    let store = catalog.store();
    let allowed: Option<HashSet<u32>> = filter.source.as_ref().map(|pattern| {
        if is_literal(pattern) {
            // An exact id: one lookup, whatever the number of sources.
            sources.get(pattern).map(|r| r.no).into_iter().collect()
        } else if pattern.contains('/') {
            // A glob over whole ids: only the ids that start with its literal prefix
            // (`/srv/footage/cam7/*` walks one camera's sources, not the library).
            let prefix = &pattern[..pattern.find(['*', '?', '[']).unwrap_or(pattern.len())];
            sources
                .with_prefix(prefix)
                .filter(|r| source_matches(pattern, &r.source))
                .map(|r| r.no)
                .collect()
        } else {
            // No literal prefix (`*/cam7/*.mp4`, a file-name glob): every id is a candidate,
            // but only those that end with the glob's literal tail are matched in full.
            let tail = literal_tail(pattern);
            sources
                .ids()
                .filter(|(id, _)| id.ends_with(tail) && source_matches(pattern, id))
                .map(|(_, no)| no)
                .collect()
        }
    });
    if allowed.as_ref().is_some_and(|a| a.is_empty()) || k == 0 {
        return Ok(Vec::new());
    }
    let (lo, hi) = (
        filter.start_ms.unwrap_or(0),
        filter.end_ms.unwrap_or(u64::MAX),
    );
    let pass = |key: u64| {
        let (no, offset) = split_key(key);
        if offset < lo || offset > hi || !allowed.as_ref().is_none_or(|a| a.contains(&no)) {
            return false;
        }
        let Some(record) = sources.by_no(no) else {
            return false;
        };
        if record.retain_from_ms.is_some_and(|floor| offset < floor)
            || !view_in_zone(record, key_view(key), filter.region.as_ref())
        {
            return false;
        }
        if filter.after_wall_ms.is_none() && filter.before_wall_ms.is_none() {
            return true;
        }
        // A wall-clock filter excludes sources whose time is unknown.
        let Some(start) = record.start_wall_ms else {
            return false;
        };
        let wall = start + offset as i64;
        filter.after_wall_ms.is_none_or(|a| wall >= a)
            && filter.before_wall_ms.is_none_or(|b| wall <= b)
    };
    let source_of = |no: u32| {
        sources.by_no(no).map(|r| {
            (
                r.source.clone(),
                (r.interval * 1000.0).round() as u64,
                r.duration_ms,
            )
        })
    };
    let finish = |clips: Vec<Clip>| -> Vec<Clip> {
        clips
            .into_iter()
            .take(k)
            .map(|mut c| {
                if let Some(r) = sources.get(&c.source) {
                    if let Some(start) = r.start_wall_ms {
                        c.start_wall_ms = Some(start + c.start_ms as i64);
                        c.end_wall_ms = Some(start + c.end_ms as i64);
                    }
                    c.region = r.views.as_ref().and_then(|v| v.get(c.view)).copied();
                }
                c
            })
            .collect()
    };
    let total = catalog.read_index().len();
    // The key ranges that can hold a passing frame, per source: only asked for when a source
    // or wall-clock filter narrows the footage (unfiltered searches never walk the sources).
    let ranges = |of: &mut dyn Iterator<Item = &SourceRecord>| -> Vec<(u32, u64, u64)> {
        of.filter(|r| r.frames > 0)
            .filter_map(|r| offsets_of(r, filter).map(|(lo, hi)| (r.no, lo, hi)))
            .collect()
    };
    let wall = filter.after_wall_ms.is_some() || filter.before_wall_ms.is_some();
    let narrowed = if allowed.is_some() || wall {
        let mut picked = match &allowed {
            Some(a) => ranges(&mut a.iter().filter_map(|&no| sources.by_no(no))),
            // A wall-clock range: only the sources that can overlap it.
            None => {
                ranges(&mut sources.overlapping_wall(filter.after_wall_ms, filter.before_wall_ms))
            }
        };
        if picked.is_empty() {
            return Ok(Vec::new());
        }
        // In key order: consecutive range reads then walk neighbouring pages of the tree.
        picked.sort_unstable();
        // A selective filter: score that footage exactly instead of making the graph search
        // wade through the rest (exact, and faster below a few percent). The sources' whole
        // frame counts bound what their ranges hold.
        let selected: u64 = picked
            .iter()
            .filter_map(|&(no, _, _)| sources.by_no(no))
            .map(|r| r.frames * r.views.as_ref().map_or(1, |v| v.len().max(1)) as u64)
            .sum();
        if exact_scan_applies(selected, total as u64) {
            let hits = score_ranges(store, &picked, query, &pass)?;
            return Ok(finish(group_clips(
                &hits,
                gap_ms,
                score_spread(&hits),
                source_of,
            )));
        }
        Some(picked)
    } else {
        None
    };
    let index = catalog.read_index();
    // Several views of one frame can come back: ask for more than a view per clip.
    let mut count = (k * 8 * VIEWS_PER_FRAME_GUESS).max(64).min(total.max(1));
    loop {
        let hits = index.search(query, count, pass)?;
        let clips = group_clips(&hits, gap_ms, score_spread(&hits), source_of);
        if clips.len() >= k || count >= total {
            return Ok(finish(clips));
        }
        if hits.len() < count {
            // The graph search came back short: the filter is sparse (few frames pass),
            // and a graph walk can miss some of them. Score the frames in the filter's
            // key ranges exactly instead: few by construction, and exact; without the
            // index's lock, which the scan does not need.
            drop(index);
            let picked = match narrowed {
                Some(p) => p,
                None => ranges(&mut sources.iter()),
            };
            let hits = score_ranges(store, &picked, query, &pass)?;
            return Ok(finish(group_clips(
                &hits,
                gap_ms,
                score_spread(&hits),
                source_of,
            )));
        }
        count = (count * 4).min(total);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::test_support::{open_test_catalog, unit};
    use crate::store::{frame_key, Fingerprint};

    #[test]
    fn many_ranges_are_scored_on_several_threads_like_one() {
        let dir = tempfile::tempdir().unwrap();
        let (catalog, _) = open_test_catalog(dir.path());
        let mut ranges = Vec::new();
        for s in 0..(3 * PARALLEL_RANGES as u64) {
            let rec = catalog
                .store()
                .new_source(&format!("/c{s}.mp4"), Fingerprint::default(), 1.0, None)
                .unwrap();
            let frames: Vec<(u64, Vec<f32>)> = (0..3)
                .map(|i| (frame_key(rec.no, i * 1000), unit(s * 10 + i, 16)))
                .collect();
            catalog.commit(&frames).unwrap();
            // Every source's first two frames.
            ranges.push((rec.no, 0, 1000));
        }
        let query = unit(777, 16);
        let odd = |key: u64| split_key(key).0 % 2 == 1;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        let parallel = pool
            .install(|| score_ranges(catalog.store(), &ranges, &query, &odd))
            .unwrap();
        let mut one = Vec::new();
        for r in &ranges {
            one.extend(score_ranges(catalog.store(), &[*r], &query, &odd).unwrap());
        }
        one.sort_by(|a, b| b.score.total_cmp(&a.score));
        assert_eq!(parallel.len(), ranges.len()); // half the sources, two frames each
        let keys = |h: &[Hit]| {
            h.iter()
                .map(|h| (h.key, h.score.to_bits()))
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(&parallel), keys(&one));
    }

    #[test]
    fn a_selective_source_filter_returns_a_full_page_of_exact_results() {
        let dir = tempfile::tempdir().unwrap();
        let (catalog, _) = open_test_catalog(dir.path());
        let mut nos = Vec::new();
        for s in 0..40 {
            let rec = catalog
                .store()
                .new_source(
                    &format!("/cam{s:02}.mp4"),
                    Fingerprint::default(),
                    1.0,
                    None,
                )
                .unwrap();
            nos.push(rec.no);
            // Frames 10 s apart: every frame is its own clip.
            let frames: Vec<(u64, Vec<f32>)> = (0..20)
                .map(|i| {
                    (
                        frame_key(rec.no, i * 10_000),
                        unit(u64::from(rec.no) * 1000 + i, 16),
                    )
                })
                .collect();
            catalog.commit(&frames).unwrap();
        }
        let query = unit(424_242, 16);
        let filter = Filter {
            source: Some("/cam07.mp4".into()),
            ..Default::default()
        };
        let clips = search(&catalog, &query, 5, &filter, 2000).unwrap();
        assert_eq!(clips.len(), 5);
        assert!(clips.iter().all(|c| c.source == "/cam07.mp4"));
        // Exactly the best frame of that source, by brute force.
        let best = (0..20u64)
            .map(|i| {
                (
                    i * 10_000,
                    unit(u64::from(nos[7]) * 1000 + i, 16)
                        .iter()
                        .zip(&query)
                        .map(|(a, b)| a * b)
                        .sum::<f32>(),
                )
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap();
        assert_eq!(clips[0].best_ms, best.0);
        // Within float16's rounding of the stored vector.
        assert!((clips[0].score - best.1).abs() < 1e-3);
        // A time range inside the filter still fills the page when enough frames match.
        let ranged = Filter {
            source: Some("/cam07.mp4".into()),
            start_ms: Some(50_000),
            end_ms: Some(150_000),
            ..Default::default()
        };
        let clips = search(&catalog, &query, 5, &ranged, 2000).unwrap();
        assert_eq!(clips.len(), 5);
        assert!(clips
            .iter()
            .all(|c| (50_000..=150_000).contains(&c.best_ms)));
        // A sparse time filter (one frame per source, 40 of 800) gets every passing frame,
        // the best one first, even where a graph walk would miss some.
        let sparse = Filter {
            start_ms: Some(50_000),
            end_ms: Some(50_000),
            ..Default::default()
        };
        let clips = search(&catalog, &query, 100, &sparse, 2000).unwrap();
        assert_eq!(clips.len(), 40);
        assert!(clips.iter().all(|c| c.best_ms == 50_000));
        let best = nos
            .iter()
            .map(|&no| {
                let v = unit(u64::from(no) * 1000 + 5, 16);
                (no, v.iter().zip(&query).map(|(a, b)| a * b).sum::<f32>())
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap();
        let top = search(&catalog, &query, 1, &sparse, 2000).unwrap();
        assert_eq!(top[0].source, format!("/cam{:02}.mp4", best.0 - nos[0]));
        // Unfiltered searches use the graph and also fill the page.
        assert_eq!(
            search(&catalog, &query, 10, &Filter::default(), 2000)
                .unwrap()
                .len(),
            10
        );
    }

    #[test]
    fn a_wall_clock_filter_searches_only_the_footage_recorded_then() {
        let dir = tempfile::tempdir().unwrap();
        let (catalog, _) = open_test_catalog(dir.path());
        let base = 1_800_000_000_000i64;
        let mut all = Vec::new();
        for s in 0..40u64 {
            let id = format!("/cam{s:02}.mp4");
            let rec = catalog
                .store()
                .new_source(&id, Fingerprint::default(), 1.0, None)
                .unwrap();
            // Each source records 200 s, starting 100 s after the previous one.
            let start = base + s as i64 * 100_000;
            catalog
                .store()
                .update_source(&id, |r| r.start_wall_ms = Some(start))
                .unwrap();
            let frames: Vec<(u64, Vec<f32>)> = (0..20)
                .map(|i| {
                    (
                        frame_key(rec.no, i * 10_000),
                        unit(u64::from(rec.no) * 1000 + i, 16),
                    )
                })
                .collect();
            for (key, v) in &frames {
                all.push((id.clone(), start + split_key(*key).1 as i64, v.clone()));
            }
            catalog.commit(&frames).unwrap();
        }
        let query = unit(77, 16);
        let (after, before) = (base + 1_050_000, base + 1_200_000);
        let filter = Filter {
            after_wall_ms: Some(after),
            before_wall_ms: Some(before),
            ..Default::default()
        };
        let clips = search(&catalog, &query, 1000, &filter, 0).unwrap();
        let inside: Vec<_> = all
            .iter()
            .filter(|(_, wall, _)| (after..=before).contains(wall))
            .collect();
        assert_eq!(
            clips.len(),
            inside.len(),
            "every frame in the window, no other"
        );
        for c in &clips {
            let wall = c.start_wall_ms.unwrap();
            assert!((after..=before).contains(&wall), "{c:?}");
        }
        let best = inside
            .iter()
            .map(|(id, _, v)| (id, v.iter().zip(&query).map(|(a, b)| a * b).sum::<f32>()))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap();
        assert_eq!(&clips[0].source, best.0);
        // 4 of 40 sources hold 10 % of the frames: the graph search answers, with f16 scores.
        assert!(
            (clips[0].score - best.1).abs() < 2e-3,
            "{} {}",
            clips[0].score,
            best.1
        );
        // A window before any recording finds nothing.
        let empty = Filter {
            before_wall_ms: Some(base - 1),
            ..Default::default()
        };
        assert!(search(&catalog, &query, 10, &empty, 0).unwrap().is_empty());
    }
}
