//! Property tests (issue 15) of the URL rules that every `ingest` argument and `status` line
//! goes through: any text gives an answer, never a panic; a password never survives
//! `redact` (shown as `***`) nor a stream's source id; redacting twice changes nothing; a URL stays a stream URL once redacted.

use frameseek::source::url::{is_stream_url, redact, stream_source_id, STREAM_SCHEMES};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_text_is_answered_without_panicking(text in "\\PC{0,80}") {
        let r = redact(&text);
        prop_assert_eq!(redact(&r), r.clone());
        prop_assert_eq!(is_stream_url(&r), is_stream_url(&text));
    }

    #[test]
    fn url_shaped_noise_is_answered_without_panicking(scheme in "[a-zA-Zé]{0,6}", rest in "[a-zé@:/?#%.0-9]{0,40}") {
        let text = format!("{scheme}://{rest}");
        let r = redact(&text);
        prop_assert_eq!(redact(&r), r.clone());
        prop_assert_eq!(is_stream_url(&r), is_stream_url(&text));
    }

    #[test]
    fn passwords_never_survive(
        scheme in prop::sample::select(STREAM_SCHEMES),
        user in "[a-z0-9é]{0,8}",
        password in "[A-Z]{6,12}",
        host in "[a-z0-9.]{1,12}(:[0-9]{1,5})?",
        tail in "(/[a-zé@:0-9]{0,10})?(\\?[a-z=@&]{0,10})?",
    ) {
        let url = format!("{scheme}://{user}:{password}@{host}{tail}");
        prop_assert!(is_stream_url(&url));
        let shown = redact(&url);
        let shown_authority = format!("{scheme}://{user}:***@{host}");
        prop_assert!(shown.starts_with(&shown_authority), "{}", shown);
        let id = stream_source_id(&url);
        prop_assert_eq!(&id, &format!("{scheme}://{user}@{host}{tail}"));
        prop_assert!(!id.contains(&password), "{}", id);
        prop_assert!(!shown.contains(&password), "{}", shown);
        prop_assert!(is_stream_url(&shown));
    }
}
