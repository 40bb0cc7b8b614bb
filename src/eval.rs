//! Measuring search quality on labelled queries, as `frameseek eval` does: the labelled-query
//! file format ([`LabelledQuery`], one JSON object per line), what counts as a hit
//! ([`Expected`]), and recall@1/5/10 with the mean reciprocal rank from the rank of each
//! query's first hit ([`EvalSummary`]). Reading the file and asking the daemon is the
//! command's job (`cli::eval`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::protocol::Clip;

/// One labelled query, as `frameseek eval` reads it (one JSON object per line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct LabelledQuery {
    /// Query text (absent for an image query).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Query image path, relative to the query file's folder or absolute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The expected source: an absolute source id, or a path suffix such as
    /// `cam1/footage.mp4`.
    pub source: String,
    /// Expected time range start, seconds.
    pub start_s: f64,
    /// Expected time range end, seconds.
    pub end_s: f64,
    /// Only search this source (exact, or a prefix ending in `*`; relative paths are taken
    /// from the query file's folder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_source: Option<String>,
    /// Only frames at or after this offset, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_s: Option<f64>,
    /// Only frames at or before this offset, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_s: Option<f64>,
    /// Groups the query belongs to (such as `seen`, `held-out`, `edge`); `frameseek eval`
    /// reports recall per group as well as over every query.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

/// Where a labelled query's right answer is.
#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    /// An absolute source id, or a path suffix such as `cam1/footage.mp4`.
    pub source: String,
    /// Start of the expected range, ms.
    pub start_ms: u64,
    /// End of the expected range, ms.
    pub end_ms: u64,
}

impl Expected {
    /// Whether `source` is the expected one: equal, or (for a relative expectation) ending
    /// in `/` followed by it.
    pub fn source_matches(&self, source: &str) -> bool {
        let expected = self.source.trim_start_matches("./");
        if Path::new(expected).is_absolute() {
            return source == expected;
        }
        source == expected || source.ends_with(&format!("/{expected}"))
    }

    /// Whether a clip is a hit: the expected source and an overlapping time range.
    pub fn is_hit(&self, clip: &Clip) -> bool {
        self.source_matches(&clip.source)
            && clip.start_ms < self.end_ms
            && clip.end_ms > self.start_ms
    }

    /// Rank (1-based) of the first hit among `clips`, if any.
    pub fn first_hit_rank(&self, clips: &[Clip]) -> Option<usize> {
        clips.iter().position(|c| self.is_hit(c)).map(|i| i + 1)
    }
}

/// Recall at 1, 5 and 10 and the mean reciprocal rank over a set of queries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalSummary {
    /// Number of queries.
    pub queries: usize,
    /// Share of queries whose first clip is a hit.
    pub recall_at_1: f64,
    /// Share with a hit among the first 5 clips.
    pub recall_at_5: f64,
    /// Share with a hit among the first 10 clips.
    pub recall_at_10: f64,
    /// Mean of 1/rank of the first hit (0 where there is none among the clips returned).
    pub mrr: f64,
}

impl EvalSummary {
    /// Summarises the rank of the first hit of each query (`None`: no hit).
    pub fn from_ranks(ranks: &[Option<usize>]) -> Self {
        let n = ranks.len();
        let share = |k: usize| {
            if n == 0 {
                return 0.0;
            }
            ranks
                .iter()
                .filter(|r| matches!(r, Some(x) if *x <= k))
                .count() as f64
                / n as f64
        };
        let mrr = if n == 0 {
            0.0
        } else {
            ranks
                .iter()
                .map(|r| r.map(|x| 1.0 / x as f64).unwrap_or(0.0))
                .sum::<f64>()
                / n as f64
        };
        Self {
            queries: n,
            recall_at_1: share(1),
            recall_at_5: share(5),
            recall_at_10: share(10),
            mrr,
        }
    }
}

/// Recall per query group: each group named by any query, in name order, with the summary of
/// the ranks of its queries. `ranks[i]` is the rank of `queries[i]`'s first hit.
pub fn summaries_by_group(
    queries: &[LabelledQuery],
    ranks: &[Option<usize>],
) -> Vec<(String, EvalSummary)> {
    let mut names: Vec<&str> = queries
        .iter()
        .flat_map(|q| q.groups.iter().map(String::as_str))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let group: Vec<Option<usize>> = queries
                .iter()
                .zip(ranks)
                .filter(|(q, _)| q.groups.iter().any(|g| g == name))
                .map(|(_, r)| *r)
                .collect();
            (name.to_string(), EvalSummary::from_ranks(&group))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clip(source: &str, start_ms: u64, end_ms: u64) -> Clip {
        Clip {
            source: source.into(),
            start_ms,
            end_ms,
            best_ms: start_ms,
            score: 0.5,
            confidence: 0.5,
            start_wall: None,
            end_wall: None,
            region: None,
            node: None,
        }
    }

    #[test]
    fn a_hit_needs_the_source_and_an_overlap() {
        let e = Expected {
            source: "cam1/footage.mp4".into(),
            start_ms: 4000,
            end_ms: 14000,
        };
        assert!(e.is_hit(&clip("/srv/cam1/footage.mp4", 10_000, 20_000)));
        assert!(e.is_hit(&clip("/srv/cam1/footage.mp4", 0, 5000)));
        assert!(
            !e.is_hit(&clip("/srv/cam1/footage.mp4", 14_000, 20_000)),
            "touching is not overlapping"
        );
        assert!(!e.is_hit(&clip("/srv/cam2/footage.mp4", 4000, 14_000)));
        assert!(
            !e.is_hit(&clip("/srv/xcam1/footage.mp4", 4000, 14_000)),
            "suffix at a path boundary"
        );
        let abs = Expected {
            source: "/srv/cam1/footage.mp4".into(),
            ..e.clone()
        };
        assert!(abs.is_hit(&clip("/srv/cam1/footage.mp4", 4000, 5000)));
        assert!(!abs.is_hit(&clip("/other/srv/cam1/footage.mp4", 4000, 5000)));
    }

    #[test]
    fn the_rank_is_that_of_the_first_hit() {
        let e = Expected {
            source: "cam2/footage.mp4".into(),
            start_ms: 30_000,
            end_ms: 40_000,
        };
        let clips = [
            clip("/f/cam1/footage.mp4", 30_000, 40_000),
            clip("/f/cam2/footage.mp4", 0, 10_000),
            clip("/f/cam2/footage.mp4", 35_000, 45_000),
            clip("/f/cam2/footage.mp4", 31_000, 33_000),
        ];
        assert_eq!(e.first_hit_rank(&clips), Some(3));
        assert_eq!(e.first_hit_rank(&clips[..2]), None);
    }

    #[test]
    fn recall_and_mrr_follow_their_definitions() {
        let s = EvalSummary::from_ranks(&[Some(1), Some(2), Some(6), None]);
        assert_eq!(s.queries, 4);
        assert_eq!(s.recall_at_1, 0.25);
        assert_eq!(s.recall_at_5, 0.5);
        assert_eq!(s.recall_at_10, 0.75);
        let mrr = (1.0 + 0.5 + 1.0 / 6.0) / 4.0;
        assert!((s.mrr - mrr).abs() < 1e-12);
        let empty = EvalSummary::from_ranks(&[]);
        assert_eq!((empty.queries, empty.mrr), (0, 0.0));
    }

    #[test]
    fn each_group_is_summarised_over_its_own_queries() {
        let q = |groups: &[&str]| LabelledQuery {
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Default::default()
        };
        let queries = [q(&["edge", "seen"]), q(&["edge"]), q(&["seen"]), q(&[])];
        let ranks = [Some(1), None, Some(7), Some(1)];
        let by = summaries_by_group(&queries, &ranks);
        let names: Vec<&str> = by.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["edge", "seen"]);
        assert_eq!((by[0].1.queries, by[0].1.recall_at_5), (2, 0.5));
        assert_eq!((by[1].1.queries, by[1].1.recall_at_5), (2, 0.5));
        assert_eq!(by[1].1.recall_at_10, 1.0);
    }
}
