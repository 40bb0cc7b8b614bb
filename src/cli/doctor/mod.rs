//! `frameseek doctor`: checks the setup, one line per check (`ok`, `warn` or `fail`, what
//! was found, what to do), and exits 1 on any fail. The checks: the merged configuration
//! and camera secrets, the model and the state's model, FFmpeg, the CUDA device, the
//! socket, the footage roots and watched folders as the service user sees them, free disk
//! against the reserve, and the index's health.
//!
//! Over 600 lines: each check is one function holding its own texts (what was found, what to
//! do), read top to bottom in the order they print; the user lookup and access(2) as another
//! user are apart in `access`.

use std::path::{Path, PathBuf};

use serde::Serialize;

use access::{may_read, service_account, Account};

use super::{Cli, EXIT_FAILURE, EXIT_OK};
use crate::client::{Client, ClientError};
use crate::config::Config;
use crate::protocol::{Request, StatusReply, StatusRequest};

mod access;

/// Arguments of `doctor`.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// Check footage access for this user (default: `frameseek`, the unit's `User=`, when
    /// run as root; else the current user).
    #[arg(long, value_name = "USER")]
    pub service_user: Option<String>,
}

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Sound.
    Ok,
    /// Works, but deserves a look.
    Warn,
    /// Broken: the daemon will not work (or not fully) until it is fixed.
    Fail,
}

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked (`config`, `model`, `socket`, …).
    pub name: String,
    /// The verdict.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to do; empty when nothing is to be done.
    pub fix: String,
}

impl Check {
    fn new(name: &str, status: Status, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            status,
            detail: detail.into(),
            fix: fix.into(),
        }
    }

    fn ok(name: &str, detail: impl Into<String>) -> Self {
        Self::new(name, Status::Ok, detail, "")
    }
}

#[derive(Serialize)]
struct Report<'a> {
    checks: &'a [Check],
    ok: bool,
}

/// Runs `doctor`.
pub fn run(cli: &Cli, args: &DoctorArgs) -> anyhow::Result<u8> {
    let checks = checks(cli, args);
    let ok = checks.iter().all(|c| c.status != Status::Fail);
    if cli.json {
        println!(
            "{}",
            serde_json::to_string(&Report {
                checks: &checks,
                ok
            })?
        );
    } else {
        print!("{}", format_checks(&checks));
    }
    Ok(if ok { EXIT_OK } else { EXIT_FAILURE })
}

/// The human output: `STATUS  NAME  DETAIL; fix: FIX`, one line per check.
fn format_checks(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in checks {
        let status = match c.status {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        };
        out.push_str(&format!("{status:<4}  {:<width$}  {}", c.name, c.detail));
        if !c.fix.is_empty() {
            out.push_str(&format!("; fix: {}", c.fix));
        }
        out.push('\n');
    }
    out
}

fn checks(cli: &Cli, args: &DoctorArgs) -> Vec<Check> {
    let mut out = Vec::new();
    out.push(ffmpeg_check());
    out.push(hwaccel_check());
    let system = Path::new(crate::config::SYSTEM_CONFIG_PATH);
    if system.exists() && std::fs::File::open(system).is_err() {
        out.push(Check::new(
            "config",
            Status::Warn,
            format!(
                "{} is not readable by this user: its settings are left out here",
                system.display()
            ),
            "run doctor as root or as a member of the group frameseek to check the daemon's configuration",
        ));
    }
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => {
            out.push(Check::ok(
                "config",
                format!("loaded and valid ({})", config_files(cli).join(", ")),
            ));
            c
        }
        Err(e) => {
            out.push(Check::new(
                "config",
                Status::Fail,
                e.to_string(),
                "correct the named key (`frameseek config` shows each value and its file)",
            ));
            return out;
        }
    };
    let (secrets, resolved) = secrets_check(cli, &config);
    out.push(secrets);
    // Camera folders given by url_file or url_credential are checked where they point.
    let config = resolved.unwrap_or(config);
    if let Some(c) = cuda_check(&config) {
        out.push(c);
    }
    let socket = cli
        .socket
        .clone()
        .unwrap_or_else(|| config.daemon.socket.clone());
    let (socket_check, status) = socket_check(&socket);
    out.push(socket_check);
    out.push(model_check(&config, status.as_ref()));
    let account = service_account(args.service_user.as_deref());
    out.extend(access_checks(&config, &account));
    out.push(disk_check(&config));
    out.push(index_check(&config, status.as_ref()));
    out
}

fn config_files(cli: &Cli) -> Vec<String> {
    let mut files = vec!["defaults".to_string()];
    let system = Path::new(crate::config::SYSTEM_CONFIG_PATH);
    if std::fs::File::open(system).is_ok() {
        files.push(system.display().to_string());
    }
    if let Some(f) = &cli.config {
        files.push(f.display().to_string());
    }
    if std::env::vars().any(|(k, _)| k.starts_with("FRAMESEEK__")) {
        files.push("FRAMESEEK__* variables".into());
    }
    files
}

/// Camera URLs from `url_file`/`url_credential` can be read; no password sits in a file
/// every user may read. Returns the configuration with the URLs read, when they could be.
fn secrets_check(cli: &Cli, config: &Config) -> (Check, Option<Config>) {
    let mut resolved = config.clone();
    // Outside the service there are no systemd credentials to read: those cameras are
    // left out here (systemd reads them for the service, from LoadCredential=).
    let mut unchecked = Vec::new();
    if std::env::var_os("CREDENTIALS_DIRECTORY").is_none() {
        resolved.cameras.retain(|c| {
            let credential = c.url_credential.is_some();
            if credential {
                unchecked.push(c.name.clone());
            }
            !credential
        });
    }
    if let Err(e) = resolved.resolve_camera_urls() {
        let check = Check::new(
            "secrets",
            Status::Fail,
            e.to_string(),
            "make the file exist and readable by the daemon's user (mode 0640, group frameseek)",
        );
        return (check, None);
    }
    let system = Path::new(crate::config::SYSTEM_CONFIG_PATH);
    let files: Vec<&Path> = std::iter::once(system)
        .chain(cli.config.as_deref())
        .collect();
    let mut exposed = crate::config::world_readable_secrets(&files);
    exposed.extend(crate::config::world_readable_url_files(&resolved.cameras));
    if let Some(e) = exposed.first() {
        let check = Check::new(
            "secrets",
            Status::Warn,
            format!(
                "camera {:?} has a password in {}, which every user may read",
                e.camera,
                e.file.display()
            ),
            format!(
                "chmod 0640 {} and chgrp frameseek it, or move the URL to url_file or url_credential (docs/OPERATIONS.md, \"Secrets\")",
                e.file.display()
            ),
        );
        return (check, Some(resolved));
    }
    let from_files = config
        .cameras
        .iter()
        .filter(|c| c.url_file.is_some() || c.url_credential.is_some())
        .count();
    let mut detail = format!(
        "{} camera(s), {from_files} with the URL outside the configuration; no password in a world-readable file",
        config.cameras.len()
    );
    if !unchecked.is_empty() {
        detail.push_str(&format!(
            "; from systemd credentials, not readable here: {} (the unit's LoadCredential= gives them to the service)",
            unchecked.join(", ")
        ));
    }
    let check = Check::ok("secrets", detail);
    (check, Some(resolved))
}

fn ffmpeg_check() -> Check {
    use ffmpeg_next::codec::Id;
    let version = ffmpeg_next::util::version();
    let version = format!(
        "libavutil {}.{}.{}",
        version >> 16,
        (version >> 8) & 0xff,
        version & 0xff
    );
    let wanted = [
        ("h264", Id::H264),
        ("hevc", Id::HEVC),
        ("mpeg4", Id::MPEG4),
        ("mjpeg", Id::MJPEG),
        ("vp9", Id::VP9),
        ("av1", Id::AV1),
    ];
    let (have, missing): (Vec<_>, Vec<_>) = wanted
        .iter()
        .partition(|(_, id)| ffmpeg_next::decoder::find(*id).is_some());
    let names = |v: &[&(&str, Id)]| v.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(" ");
    if have.is_empty() {
        return Check::new(
            "ffmpeg",
            Status::Fail,
            format!(
                "{version}: none of the common decoders ({})",
                names(&missing)
            ),
            "install the distribution's FFmpeg libraries (libavcodec with its usual decoders)",
        );
    }
    let detail = format!("{version}, decoders: {}", names(&have));
    if missing.is_empty() {
        Check::ok("ffmpeg", detail)
    } else {
        Check::new(
            "ffmpeg",
            Status::Warn,
            format!("{detail}; missing: {}", names(&missing)),
            "footage in the missing codecs will fail; install an FFmpeg build with them",
        )
    }
}

/// FFmpeg's hardware device types (CUDA, VAAPI, …) in these libraries.
fn hwaccel_check() -> Check {
    let mut names = Vec::new();
    // SAFETY: iterating FFmpeg's static table of device types; the names are static strings.
    unsafe {
        let mut t = ffmpeg_next::ffi::AVHWDeviceType::AV_HWDEVICE_TYPE_NONE;
        loop {
            t = ffmpeg_next::ffi::av_hwdevice_iterate_types(t);
            if t == ffmpeg_next::ffi::AVHWDeviceType::AV_HWDEVICE_TYPE_NONE {
                break;
            }
            let name = ffmpeg_next::ffi::av_hwdevice_get_type_name(t);
            if !name.is_null() {
                names.push(
                    std::ffi::CStr::from_ptr(name)
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    if names.is_empty() {
        Check::ok(
            "hwdecode",
            "no hardware decoders in these FFmpeg libraries: decoding runs on the CPU",
        )
    } else {
        Check::ok(
            "hwdecode",
            format!("hardware device types: {}", names.join(" ")),
        )
    }
}

/// The CUDA device, only when `model.device` asks for one.
fn cuda_check(config: &Config) -> Option<Check> {
    use crate::embed::DeviceChoice;
    let DeviceChoice::Cuda(n) = config.model.device else {
        return None;
    };
    Some(match config.model.device.open() {
        Ok(_) => Check::ok("cuda", format!("cuda:{n} opens")),
        Err(e) => Check::new(
            "cuda",
            Status::Fail,
            e.to_string(),
            "install the NVIDIA driver and a CUDA build of frameseek, or set model.device = \"cpu\"",
        ),
    })
}

/// Connects and asks for `status`; the reply feeds the model and index checks.
fn socket_check(socket: &Path) -> (Check, Option<StatusReply>) {
    let shown = socket.display();
    let status = Client::connect(socket).and_then(|mut c| {
        c.call(&Request::Status(StatusRequest {
            limit: Some(0),
            source: None,
        }))
    });
    match status {
        Ok(v) => match serde_json::from_value::<StatusReply>(v) {
            Ok(s) => (
                Check::ok(
                    "socket",
                    format!("{shown}: daemon {} answers", s.version),
                ),
                Some(s),
            ),
            Err(e) => (
                Check::new(
                    "socket",
                    Status::Fail,
                    format!("{shown}: unexpected status reply: {e}"),
                    "the client and the daemon differ in version: restart the daemon after an upgrade",
                ),
                None,
            ),
        },
        Err(ClientError::NotRunning(_)) => (
            Check::new(
                "socket",
                Status::Warn,
                format!("{shown}: the daemon is not running"),
                "start it: systemctl start frameseek (or frameseek serve)",
            ),
            None,
        ),
        Err(ClientError::PermissionDenied(_)) => (
            Check::new(
                "socket",
                Status::Fail,
                format!("{shown}: permission denied for this user"),
                "add the user to the socket's group (sudo usermod -aG frameseek $USER) and log in again, or fix daemon.socket_group",
            ),
            None,
        ),
        Err(e) => (
            Check::new(
                "socket",
                Status::Fail,
                format!("{shown}: {e}"),
                "see `journalctl -u frameseek`",
            ),
            None,
        ),
    }
}

/// The model loads, and is the one the state was built with.
fn model_check(config: &Config, status: Option<&StatusReply>) -> Check {
    let path = &config.model.path;
    // Both towers: the daemon builds its image tower at the first ingest, not at start.
    let embedder = match crate::embed::Embedder::load(path, crate::embed::DeviceChoice::Cpu)
        .and_then(|e| e.load_image_tower().map(|()| e))
    {
        Ok(e) => e,
        Err(e) => {
            return Check::new(
                "model",
                Status::Fail,
                e.to_string(),
                "set model.path to a local CLIP folder (config.json, model.safetensors, tokenizer.json, preprocessor_config.json)",
            )
        }
    };
    let id = embedder.identity();
    let mismatch = |stored: &str, dim: usize| {
        Check::new(
            "model",
            Status::Fail,
            format!(
                "model.path {path} ({} dims) is not the state's model {stored} ({dim} dims)",
                id.dim
            ),
            "set model.path back, or use a new daemon.state_dir (or `frameseek reindex` with the daemon stopped)",
        )
    };
    if let Some(s) = status {
        if s.model.dim != id.dim || s.model.id != id.id {
            return mismatch(&s.model.id, s.model.dim);
        }
        return Check::ok(
            "model",
            format!("{path} loads ({} dims) and is the running daemon's", id.dim),
        );
    }
    match stored_model(&config.daemon.state_dir) {
        Ok(None) => Check::ok(
            "model",
            format!("{path} loads ({} dims); no state recorded a model yet", id.dim),
        ),
        Ok(Some(stored)) if stored.dim != id.dim || stored.digest != id.digest => {
            mismatch(&stored.id, stored.dim)
        }
        Ok(Some(_)) => Check::ok(
            "model",
            format!("{path} loads ({} dims) and matches the state's", id.dim),
        ),
        Err(e) => Check::new(
            "model",
            Status::Warn,
            format!("{path} loads ({} dims); the state's model cannot be read: {e}", id.dim),
            "run doctor again with the daemon's socket reachable (--socket), or stop the process holding the state",
        ),
    }
}

/// The model recorded in a state folder whose daemon is not reachable. The database is
/// only opened when it exists; a daemon holding it makes the open fail (sled's lock), and
/// nothing is taken from it.
fn stored_model(state_dir: &Path) -> anyhow::Result<Option<crate::embed::ModelIdentity>> {
    let db = state_dir.join("db");
    if !db.is_dir() {
        return Ok(None);
    }
    let store = crate::store::Store::open(&db)?;
    Ok(store.stored_model()?)
}

/// Every footage root, watched folder and camera folder, readable by the service user.
fn access_checks(config: &Config, account: &Result<Account, String>) -> Vec<Check> {
    let account = match account {
        Ok(a) => a,
        Err(why) => {
            return vec![Check::new(
                "access",
                Status::Warn,
                format!("footage access not checked: {why}"),
                "install the package (it creates the user), or pass --service-user USER",
            )]
        }
    };
    let mut paths: Vec<(&str, PathBuf)> = config
        .daemon
        .footage_roots
        .iter()
        .map(|p| ("footage root", p.clone()))
        .collect();
    paths.extend(
        config
            .ingest
            .watch
            .iter()
            .map(|p| ("watched folder", p.clone())),
    );
    paths.extend(
        config
            .cameras
            .iter()
            .filter(|c| !c.url.is_empty() && !crate::source::is_stream_url(&c.url))
            .map(|c| ("camera folder", PathBuf::from(&c.url))),
    );
    let mut failed = Vec::new();
    for (what, path) in &paths {
        if !path.exists() {
            failed.push(format!("{what} {} does not exist", path.display()));
        } else if let Err(e) = may_read(account, path) {
            failed.push(format!(
                "{what} {}: user {} cannot read it ({e})",
                path.display(),
                account.name
            ));
        }
    }
    if failed.is_empty() {
        vec![Check::ok(
            "access",
            format!(
                "user {} can read {} footage folder(s)",
                account.name,
                paths.len()
            ),
        )]
    } else {
        failed
            .into_iter()
            .map(|f| {
                Check::new(
                    "access",
                    Status::Fail,
                    f,
                    format!("create the folder, or give user {} read access (e.g. chgrp -R frameseek and chmod g+rX), or correct daemon.footage_roots / ingest.watch", account.name),
                )
            })
            .collect()
    }
}

/// Free space on the state folder's file system against `ingest.resume_free_mb` and
/// `daemon.export_reserve_mb`.
fn disk_check(config: &Config) -> Check {
    let state = &config.daemon.state_dir;
    let existing = state
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    let Some(free) = crate::store::disk::free_bytes(existing) else {
        return Check::new(
            "disk",
            Status::Warn,
            format!("cannot read the free space of {}", existing.display()),
            "check that the state folder's file system is mounted",
        );
    };
    let free_mb = free as f64 / 1e6;
    let reserve_mb = config
        .ingest
        .resume_free_mb
        .max(config.daemon.export_reserve_mb);
    let detail = format!(
        "{free_mb:.0} MB free on {} (reserve {reserve_mb:.0} MB: ingest.resume_free_mb, daemon.export_reserve_mb)",
        existing.display()
    );
    if free_mb < reserve_mb {
        Check::new(
            "disk",
            Status::Fail,
            detail,
            "free space (forget old sources, lower [retention]), grow the file system, or lower the reserve",
        )
    } else {
        Check::ok("disk", detail)
    }
}

/// The index's health: from the running daemon's `status`, else from the state's
/// manifest (read, never locked).
fn index_check(config: &Config, status: Option<&StatusReply>) -> Check {
    if let Some(s) = status {
        if let Some(e) = &s.ingest_error {
            return Check::new(
                "index",
                Status::Fail,
                format!("ingest stopped: {e}"),
                "free disk space; ingest resumes on its own",
            );
        }
        if s.pipeline.stalled {
            return Check::new(
                "index",
                Status::Fail,
                format!(
                    "ingest pipeline stalled: {}",
                    s.pipeline.reason.clone().unwrap_or_default()
                ),
                "systemctl restart frameseek; see journalctl -u frameseek",
            );
        }
        let detail = format!(
            "{} frames; sources: {} done, {} queued, {} ingesting, {} failed",
            s.frames, s.states.done, s.states.queued, s.states.ingesting, s.states.failed
        );
        if s.states.failed > 0 {
            return Check::new(
                "index",
                Status::Warn,
                detail,
                "`frameseek status` shows each failed source's reason",
            );
        }
        return Check::ok("index", detail);
    }
    let state = &config.daemon.state_dir;
    let manifest = state.join("manifest.json");
    if !state.join("db").exists() {
        return Check::ok(
            "index",
            format!(
                "no state in {} yet: created at the daemon's first start",
                state.display()
            ),
        );
    }
    let frames = std::fs::read(&manifest)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("frames").and_then(|f| f.as_u64()));
    match (frames, state.join("index.usearch").exists()) {
        (Some(n), true) => Check::ok(
            "index",
            // The manifest counts stored vectors: each frame's views (issue 16).
            format!("{n} views at the last checkpoint (daemon not running)"),
        ),
        (_, false) => Check::new(
            "index",
            Status::Warn,
            format!("{} has a database but no index file", state.display()),
            "nothing to do: the daemon rebuilds the index from the database at start",
        ),
        (None, true) => Check::new(
            "index",
            Status::Warn,
            format!("{} has no readable manifest.json", manifest.display()),
            "the next checkpoint writes it; if the database is damaged, restore a backup (docs/OPERATIONS.md)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_check_is_one_line_with_its_fix() {
        let text = format_checks(&[
            Check::ok("config", "loaded"),
            Check::new("disk", Status::Fail, "1 MB free", "free space"),
        ]);
        assert_eq!(
            text,
            "ok    config  loaded\nfail  disk    1 MB free; fix: free space\n"
        );
    }
}
