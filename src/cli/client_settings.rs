//! What a client command needs to know (where the socket is, how to show times and colour),
//! found without loading or validating the daemon's configuration: a bad daemon-only key
//! must never break `status` or `search`.
//!
//! The socket, first found wins: `--socket`; `$FRAMESEEK_SOCKET`; `[daemon] socket` of the
//! file given with `--config`; `socket` in the per-user `client.toml`
//! (`$XDG_CONFIG_HOME/frameseek/client.toml`, else `~/.config/frameseek/client.toml`);
//! `$FRAMESEEK__DAEMON__SOCKET`; `[daemon] socket` of `/etc/frameseek/frameseek.toml`;
//! the built-in default. The system files are read leniently: only that one key, and a file
//! that does not parse is passed over.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use super::output::{ColorChoice, Display};
use crate::config::{DEFAULT_CONFIG_TOML, SYSTEM_CONFIG_PATH};

/// The per-user client file, below the user's configuration folder.
pub const CLIENT_FILE: &str = "frameseek/client.toml";

/// The variable naming the socket for client commands.
pub const SOCKET_ENV: &str = "FRAMESEEK_SOCKET";

/// The keys of `client.toml`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientFile {
    /// The daemon's socket.
    pub socket: Option<PathBuf>,
    /// IANA time zone for the times in tables (`Europe/Paris`); default: the system's.
    pub time_zone: Option<String>,
    /// `auto`, `always` or `never`, as `--color`.
    pub color: Option<ColorChoice>,
}

/// Where the per-user client file is: `$XDG_CONFIG_HOME` (when absolute) or `~/.config`.
pub fn client_file_path() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let base = xdg.or_else(|| {
        std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(".config"))
    })?;
    Some(base.join(CLIENT_FILE))
}

/// Reads the per-user client file: empty when there is none; an error naming the file and
/// the key when it is there but wrong (it is the user's own file: a typo is worth saying).
pub fn read_client_file() -> anyhow::Result<ClientFile> {
    let Some(path) = client_file_path() else {
        return Ok(ClientFile::default());
    };
    if !path.exists() {
        return Ok(ClientFile::default());
    }
    config::Config::builder()
        .add_source(config::File::from(path.as_path()).format(config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize::<ClientFile>())
        .with_context(|| {
            format!(
                "bad client settings in {} (keys: socket, time_zone, color)",
                path.display()
            )
        })
}

/// How this command shows things: `--color` over `color` in client.toml over `auto`;
/// `--utc` over `time_zone` in client.toml over the system's zone.
pub fn display(cli: &super::Cli) -> anyhow::Result<Display> {
    let file = read_client_file()?;
    let color = cli
        .color
        .or(file.color)
        .unwrap_or(ColorChoice::Auto)
        .enabled_here();
    let tz = if cli.utc {
        jiff::tz::TimeZone::UTC
    } else {
        super::when::time_zone(file.time_zone.as_deref())?
    };
    Ok(Display { color, tz })
}

/// `[daemon] socket` of a TOML text, or `None` when the text does not parse or lacks the
/// key. Nothing else in it is looked at.
fn socket_in_toml(text: &str) -> Option<PathBuf> {
    config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .build()
        .ok()?
        .get_string("daemon.socket")
        .ok()
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
}

/// `[daemon] socket` of a file, leniently (see [`socket_in_toml`]); `None` when the file
/// cannot be read.
fn socket_in_file(path: &Path) -> Option<PathBuf> {
    socket_in_toml(&std::fs::read_to_string(path).ok()?)
}

/// The built-in default socket.
pub fn default_socket() -> PathBuf {
    socket_in_toml(DEFAULT_CONFIG_TOML)
        .unwrap_or_else(|| PathBuf::from("/run/frameseek/frameseek.sock"))
}

/// Everything the socket may come from, in order of precedence.
#[derive(Debug, Default)]
pub struct SocketSources {
    /// `--socket`.
    pub flag: Option<PathBuf>,
    /// `$FRAMESEEK_SOCKET`.
    pub env: Option<OsString>,
    /// `--config FILE`.
    pub config_file: Option<PathBuf>,
    /// `socket` in client.toml.
    pub client_file: Option<PathBuf>,
    /// `$FRAMESEEK__DAEMON__SOCKET`.
    pub daemon_env: Option<OsString>,
    /// The system configuration file.
    pub system_file: Option<PathBuf>,
}

impl SocketSources {
    /// The socket and the name of where it came from.
    pub fn resolve(&self) -> (PathBuf, &'static str) {
        let non_empty =
            |v: &Option<OsString>| v.clone().filter(|v| !v.is_empty()).map(PathBuf::from);
        if let Some(s) = &self.flag {
            return (s.clone(), "--socket");
        }
        if let Some(s) = non_empty(&self.env) {
            return (s, SOCKET_ENV);
        }
        if let Some(s) = self.config_file.as_deref().and_then(socket_in_file) {
            return (s, "--config");
        }
        if let Some(s) = &self.client_file {
            return (s.clone(), "client.toml");
        }
        if let Some(s) = non_empty(&self.daemon_env) {
            return (s, "FRAMESEEK__DAEMON__SOCKET");
        }
        if let Some(s) = self.system_file.as_deref().and_then(socket_in_file) {
            return (s, "system configuration");
        }
        (default_socket(), "default")
    }
}

/// The socket a client command talks to, and where that came from (see the module's doc).
pub fn socket(
    flag: Option<&Path>,
    config_file: Option<&Path>,
) -> anyhow::Result<(PathBuf, &'static str)> {
    let client = if flag.is_some() || std::env::var_os(SOCKET_ENV).is_some_and(|v| !v.is_empty()) {
        ClientFile::default()
    } else {
        read_client_file()?
    };
    Ok(SocketSources {
        flag: flag.map(Path::to_path_buf),
        env: std::env::var_os(SOCKET_ENV),
        config_file: config_file.map(Path::to_path_buf),
        client_file: client.socket,
        daemon_env: std::env::var_os("FRAMESEEK__DAEMON__SOCKET"),
        system_file: Some(PathBuf::from(SYSTEM_CONFIG_PATH)),
    }
    .resolve())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_source_of_the_socket_wins_over_the_later_ones() {
        let dir = tempfile::tempdir().unwrap();
        let system = dir.path().join("system.toml");
        // A daemon-only key that the daemon would refuse does not matter here.
        std::fs::write(
            &system,
            "[daemon]\nsocket = \"/s/system.sock\"\n[ingest]\nsample_interval = -5\nbogus = 1\n",
        )
        .unwrap();
        let given = dir.path().join("given.toml");
        std::fs::write(&given, "[daemon]\nsocket = \"/s/given.sock\"\n").unwrap();
        let mut s = SocketSources {
            flag: Some("/s/flag.sock".into()),
            env: Some("/s/env.sock".into()),
            config_file: Some(given.clone()),
            client_file: Some("/s/client.sock".into()),
            daemon_env: Some("/s/daemon-env.sock".into()),
            system_file: Some(system.clone()),
        };
        let mut seen = Vec::new();
        loop {
            let (path, from) = s.resolve();
            seen.push((path.display().to_string(), from));
            match from {
                "--socket" => s.flag = None,
                SOCKET_ENV => s.env = None,
                "--config" => s.config_file = None,
                "client.toml" => s.client_file = None,
                "FRAMESEEK__DAEMON__SOCKET" => s.daemon_env = None,
                "system configuration" => s.system_file = None,
                _ => break,
            }
        }
        let paths: Vec<&str> = seen.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/s/flag.sock",
                "/s/env.sock",
                "/s/given.sock",
                "/s/client.sock",
                "/s/daemon-env.sock",
                "/s/system.sock",
                "/run/frameseek/frameseek.sock"
            ]
        );
    }

    #[test]
    fn unreadable_or_keyless_system_files_are_passed_over() {
        let dir = tempfile::tempdir().unwrap();
        let broken = dir.path().join("broken.toml");
        std::fs::write(&broken, "[daemon\nsocket = ").unwrap();
        let keyless = dir.path().join("keyless.toml");
        std::fs::write(&keyless, "[ingest]\nsample_interval = 2\n").unwrap();
        for file in [broken, keyless, dir.path().join("missing.toml")] {
            let s = SocketSources {
                config_file: Some(file.clone()),
                system_file: Some(file),
                ..Default::default()
            };
            assert_eq!(s.resolve(), (default_socket(), "default"));
        }
        // An empty variable counts as unset.
        let s = SocketSources {
            env: Some("".into()),
            ..Default::default()
        };
        assert_eq!(s.resolve().1, "default");
    }
}
