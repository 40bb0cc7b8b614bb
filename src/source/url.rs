//! The rules for source names that are URLs: which schemes are read as live streams, and
//! how a URL is shown without its password.

/// URL schemes read as live streams.
pub const STREAM_SCHEMES: &[&str] = &[
    "rtsp", "rtsps", "rtmp", "rtmps", "udp", "rtp", "srt", "tcp", "http", "https",
];

/// True when `text` is a URL of a scheme read as a live stream.
pub fn is_stream_url(text: &str) -> bool {
    text.split_once("://").is_some_and(|(scheme, rest)| {
        !rest.is_empty() && STREAM_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str())
    })
}

/// The URL without its password (`rtsp://user:pw@host/x` -> `rtsp://user@host/x`): the
/// source id of a stream given to `ingest`, and what `status` shows.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}@{host}{tail}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_urls_are_recognised_and_passwords_redacted() {
        for u in [
            "rtsp://10.0.0.2/main",
            "RTMP://host/app/key",
            "udp://127.0.0.1:5000",
            "https://cdn/x.m3u8",
        ] {
            assert!(is_stream_url(u), "{u}");
        }
        for u in ["/srv/a.mp4", "ftp://h/x", "rtsp://", "file:///x"] {
            assert!(!is_stream_url(u), "{u}");
        }
        assert_eq!(
            redact("rtsp://admin:secret@10.0.0.2:554/s1?x=y"),
            "rtsp://admin@10.0.0.2:554/s1?x=y"
        );
        assert_eq!(redact("rtsp://10.0.0.2/s1"), "rtsp://10.0.0.2/s1");
        assert_eq!(redact("http://h/a@b"), "http://h/a@b");
    }
}
