//! Source filters: an exact source id, or a glob over ids or file names.

/// Which sources a search may return. `pattern` is an exact source id, or a glob: `*` (any
/// run of characters, `/` included, so `/srv/cam1/*` is a prefix), `?` (one character),
/// `[a-z]` / `[!a-z]` (a class). A glob with a `/` is matched against the whole id
/// (`*/lobby/*.mp4`); one without is matched against the file name (`cam*`).
pub fn source_matches(pattern: &str, source: &str) -> bool {
    if pattern == source {
        return true;
    }
    if !pattern.contains(['*', '?', '[']) {
        return false;
    }
    if pattern.contains('/') {
        glob_matches(pattern.as_bytes(), source.as_bytes())
    } else {
        let name = source.rsplit('/').next().unwrap_or(source);
        glob_matches(pattern.as_bytes(), name.as_bytes())
    }
}

/// The literal end of a glob: what follows its last `*`, `?` or class (empty when it ends
/// with one). Every id the glob matches ends with it, so it rules out most ids cheaply.
pub fn literal_tail(pattern: &str) -> &str {
    pattern
        .rfind(['*', '?', '[', ']'])
        .map_or(pattern, |i| &pattern[i + 1..])
}

/// True when one glob character class `[...]` at the start of `p` matches `c`; returns the
/// class's length too (`None` when `p` holds no closed class, so `[` is literal).
fn class_matches(p: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == b']' && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' {
            hit |= p[i] <= c && c <= p[i + 2];
            i += 3;
        } else {
            hit |= p[i] == c;
            i += 1;
        }
    }
    None
}

/// Glob match of the whole of `s`: `*` any run (`/` included), `?` one byte, `[a-z]`,
/// `[!x]` classes; everything else literal. Iterative with one backtrack point per `*`.
fn glob_matches(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        let step = match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, si));
                pi += 1;
                continue;
            }
            Some(b'?') => Some(1),
            Some(b'[') => match class_matches(&p[pi..], s[si]) {
                Some((true, len)) => Some(len),
                Some((false, _)) => None,
                None => (s[si] == b'[').then_some(1),
            },
            Some(&c) => (c == s[si]).then_some(1),
            None => None,
        };
        match (step, star) {
            (Some(len), _) => {
                pi += len;
                si += 1;
            }
            (None, Some((sp, ss))) => {
                pi = sp + 1;
                si = ss + 1;
                star = Some((sp, ss + 1));
            }
            (None, None) => return false,
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_patterns() {
        assert!(source_matches("/srv/cam1/a.mp4", "/srv/cam1/a.mp4"));
        assert!(!source_matches("/srv/cam1", "/srv/cam1/a.mp4"));
        assert!(source_matches("/srv/cam1/*", "/srv/cam1/a.mp4"));
        assert!(!source_matches("/srv/cam2/*", "/srv/cam1/a.mp4"));
    }

    #[test]
    fn globs_match_whole_ids_or_file_names() {
        // No `/`: the file name.
        assert!(source_matches("cam*", "/srv/footage/cam1.mp4"));
        assert!(!source_matches("cam*", "/srv/cam1/lobby.mp4"));
        assert!(source_matches("*.mkv", "/a/b/c.mkv"));
        assert!(source_matches("cam?.mp4", "/x/cam7.mp4"));
        assert!(!source_matches("cam?.mp4", "/x/cam17.mp4"));
        assert!(source_matches("cam[0-4].mp4", "/x/cam3.mp4"));
        assert!(!source_matches("cam[0-4].mp4", "/x/cam5.mp4"));
        assert!(source_matches("cam[!0-4].mp4", "/x/cam5.mp4"));
        // With `/`: the whole id; `*` crosses folders.
        assert!(source_matches("*/lobby/*.mp4", "/srv/site1/lobby/a.mp4"));
        assert!(source_matches(
            "*/lobby/*.mp4",
            "/srv/site1/lobby/2026/a.mp4"
        ));
        assert!(!source_matches("*/lobby/*.mp4", "/srv/site1/lobby/a.mkv"));
        assert!(!source_matches("*/lobby/*.mp4", "/srv/site1/garage/a.mp4"));
        assert!(source_matches("/srv/*/cam1/*", "/srv/a/cam1/x.mp4"));
        assert!(source_matches("*a*b*c", "/xaxxbxbc"));
        assert!(!source_matches("*a*b*c", "/xaxxbxbcd"));
        // A literal `[` with no closing `]`, and a source id with glob characters in it.
        assert!(source_matches("/x/[a*", "/x/[abc"));
        assert!(source_matches("/x/a[1].mp4", "/x/a[1].mp4"));
    }

    proptest::proptest! {
        /// An id a glob matches always ends with the glob's literal tail (the search's
        /// cheap first test may only rule out ids the glob does not match).
        #[test]
        fn a_match_ends_with_the_literal_tail(
            pattern in "[/ab*?\\[\\]!.-]{0,12}",
            id in "[/ab.-]{0,16}",
        ) {
            if source_matches(&pattern, &id) && pattern.contains(['*', '?', '[']) {
                proptest::prop_assert!(id.ends_with(literal_tail(&pattern)));
            }
        }
    }

    #[test]
    fn literal_tails() {
        assert_eq!(literal_tail("*/src042.mp4"), "/src042.mp4");
        assert_eq!(literal_tail("cam[0-9]*"), "");
        assert_eq!(literal_tail("/srv/cam?.mkv"), ".mkv");
        assert_eq!(literal_tail("a[bc]d"), "d");
    }
}
