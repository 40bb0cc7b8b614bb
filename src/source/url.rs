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

/// The source id of a stream given to `ingest`: the URL without its password
/// (`rtsp://user:pw@host/x` -> `rtsp://user@host/x`). Show URLs with [`redact`].
pub fn stream_source_id(url: &str) -> String {
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

/// Query parameters whose values [`redact`] hides (compared case-insensitively).
pub const SECRET_QUERY_KEYS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "token",
    "access_token",
    "auth_token",
    "secret",
];

/// What a hidden secret is shown as.
pub const REDACTED: &str = "***";

/// A URL as it may be printed anywhere (logs, `status`, errors, `doctor`, `config`): the
/// user-info password and the values of [`SECRET_QUERY_KEYS`] replaced by `***`
/// (`rtsp://user:pw@host/x?token=t` -> `rtsp://user:***@host/x?token=***`). Text that is
/// not a URL is returned as it is.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:{REDACTED}@{host}"),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    format!("{scheme}://{authority}{}", redact_query(tail))
}

/// `tail` (path, query, fragment) with the values of secret query parameters hidden.
fn redact_query(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_string();
    };
    let mut out = String::with_capacity(tail.len());
    out.push_str(path);
    out.push('?');
    let mut rest = query;
    // Split on the separators FFmpeg and HTTP use, keeping each separator in place.
    while !rest.is_empty() {
        let end = rest.find(['&', ';', '#']).unwrap_or(rest.len());
        let (pair, after) = rest.split_at(end);
        match pair.split_once('=') {
            Some((key, _)) if SECRET_QUERY_KEYS.contains(&key.to_ascii_lowercase().as_str()) => {
                out.push_str(key);
                out.push('=');
                out.push_str(REDACTED);
            }
            _ => out.push_str(pair),
        }
        let mut chars = after.chars();
        if let Some(sep) = chars.next() {
            out.push(sep);
        }
        rest = chars.as_str();
    }
    out
}

/// True when `url` holds a secret that [`redact`] hides: a user-info password or a secret
/// query parameter.
pub fn has_secret(url: &str) -> bool {
    redact(url) != url
}

/// Why a stream URL given by a socket client is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamRefused {
    /// No entry of `ingest.client_streams` matches the URL.
    #[error("{0}: socket clients may not add this stream; configure it as a [[cameras]] entry, or allow it in ingest.client_streams (empty by default)")]
    NotAllowed(String),
    /// The URL asks FFmpeg to listen or bind a local address of its choosing.
    #[error("{url}: `{key}` makes the daemon listen or bind a local address; client streams may only connect out (configure a [[cameras]] entry to receive)")]
    Listens {
        /// The URL without its password.
        url: String,
        /// The query key that asks for it.
        key: String,
    },
}

/// Query keys of a stream URL that make FFmpeg listen, bind a chosen local address, or act
/// as a server (tcp/http/rtmp `listen`, srt `mode=listener|rendezvous`, udp `localaddr`,
/// `localport`, rtsp `rtsp_flags=listen`, ...). A client-given URL with any of them is
/// refused, whatever the allow-list says.
pub const LISTENING_KEYS: &[&str] = &[
    "listen",
    "listen_timeout",
    "mode",
    "localaddr",
    "localport",
    "local_port",
    "local_addr",
    "rtsp_flags",
    "reuse",
    "reuse_socket",
];

/// `ingest.client_streams`: which stream URLs socket clients may add with `ingest`. Each
/// entry is a prefix of the URL (compared without its user and password, scheme and host
/// case-insensitively) in which `*` stands for any run of characters other than `/`, `?`,
/// `#` and `@` (`rtsp://cam-*.lan/`). Empty (the default): clients may add no stream.
#[derive(Debug, Clone, Default)]
pub struct ClientStreams(Vec<String>);

impl ClientStreams {
    /// The allow-list as configured.
    pub fn new(entries: &[String]) -> Self {
        Self(entries.iter().map(|e| e.to_ascii_lowercase()).collect())
    }

    /// Checks a stream URL given by a socket client: no listening or binding key in its
    /// query, and an allow-list entry that matches it.
    pub fn check(&self, url: &str) -> Result<(), StreamRefused> {
        let shown = redact(url);
        if let Some(key) = listening_key(url) {
            return Err(StreamRefused::Listens { url: shown, key });
        }
        let bare = without_userinfo(url).to_ascii_lowercase();
        if self.0.iter().any(|p| prefix_matches(p, &bare)) {
            Ok(())
        } else {
            Err(StreamRefused::NotAllowed(shown))
        }
    }
}

/// The first query key of `url` that asks for listening or binding. Everything after the
/// first `?` counts, fragment included: FFmpeg's protocols look options up in the whole rest
/// of the URL (`tcp://h:1?x#&listen=1` listens).
fn listening_key(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let query = rest.split_once('?')?.1;
    query
        .split(['&', '#', '?', ';'])
        .map(|kv| kv.split('=').next().unwrap_or("").to_ascii_lowercase())
        .find(|k| LISTENING_KEYS.contains(&k.as_str()))
}

/// The URL without `user:password@`.
fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{host}{tail}")
}

/// True when `pattern` (with `*` wildcards) matches a prefix of `text`.
fn prefix_matches(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => text.starts_with(pattern),
        Some((head, tail)) => {
            let Some(rest) = text.strip_prefix(head) else {
                return false;
            };
            let run = rest.find(['/', '?', '#', '@']).unwrap_or(rest.len());
            (0..=run).any(|n| prefix_matches(tail, &rest[n..]))
        }
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
            "rtsp://admin:***@10.0.0.2:554/s1?x=y"
        );
        assert_eq!(
            stream_source_id("rtsp://admin:secret@10.0.0.2:554/s1?x=y"),
            "rtsp://admin@10.0.0.2:554/s1?x=y"
        );
        assert_eq!(redact("rtsp://10.0.0.2/s1"), "rtsp://10.0.0.2/s1");
        assert_eq!(
            redact("rtsp://admin@10.0.0.2/s1"),
            "rtsp://admin@10.0.0.2/s1"
        );
        assert_eq!(redact("http://h/a@b"), "http://h/a@b");
        assert_eq!(
            redact("https://cdn/x.m3u8?Token=abc&q=1;password=p#f"),
            "https://cdn/x.m3u8?Token=***&q=1;password=***#f"
        );
        assert_eq!(redact("/srv/footage/a.mp4"), "/srv/footage/a.mp4");
        assert!(has_secret("rtsp://u:p@h/") && has_secret("http://h/?pwd=1"));
        assert!(!has_secret("rtsp://u@h/?x=1"));
    }

    #[test]
    fn client_streams_need_an_allow_list_entry_and_never_listen() {
        let none = ClientStreams::default();
        assert!(matches!(
            none.check("udp://127.0.0.1:5599"),
            Err(StreamRefused::NotAllowed(_))
        ));
        assert!(none.check("http://example.com/x.m3u8").is_err());
        let allow = ClientStreams::new(&[
            "rtsp://10.0.0.".into(),
            "rtsp://cam-*.lan/".into(),
            "tcp://127.0.0.1:".into(),
        ]);
        assert_eq!(allow.check("rtsp://admin:pw@10.0.0.7:554/s1"), Ok(()));
        assert_eq!(allow.check("RTSP://cam-gate.lan/main"), Ok(()));
        assert!(allow.check("rtsp://cam-gate.lan.evil.com/main").is_err());
        assert!(allow.check("rtsp://cam-x/y.lan/").is_err());
        assert!(allow.check("rtsp://10.1.0.7/s1").is_err());
        assert!(allow.check("rtsp://10.0.0.5@evil.example/s1").is_err());
        assert_eq!(
            allow.check("tcp://127.0.0.1:5598?listen=1"),
            Err(StreamRefused::Listens {
                url: "tcp://127.0.0.1:5598?listen=1".into(),
                key: "listen".into()
            })
        );
        assert!(allow.check("tcp://127.0.0.1:5598?x=1&Listen").is_err());
        assert!(allow.check("tcp://127.0.0.1:5598?x=1#&listen=1").is_err());
        assert!(allow.check("tcp://127.0.0.1:5598?x=1?listen=1").is_err());
        assert_eq!(allow.check("tcp://127.0.0.1:5598?timeout=5"), Ok(()));
        assert!(allow.check("rtsp://10.0.0.7/s?rtsp_flags=listen").is_err());
        let refused = none.check("rtsp://u:secret@h/x").unwrap_err().to_string();
        assert!(!refused.contains("secret") && refused.contains("ingest.client_streams"));
    }
}
