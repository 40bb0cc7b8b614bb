//! How the lean `frameseek` hands a command to `frameseek-engine`: `exec`, so the engine
//! keeps the process id, the arguments and the environment (systemd's `NOTIFY_SOCKET`,
//! `LISTEN_FDS` and `LISTEN_PID` stay true for `frameseek serve`).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

/// The engine's file name.
pub const ENGINE_NAME: &str = "frameseek-engine";

/// Where the package installs the engine when it is not beside `frameseek`.
pub const PACKAGED_ENGINE: &str = "/usr/lib/frameseek/frameseek-engine";

/// Replaces this process with the engine, same arguments and environment. Returns only on
/// failure: no engine at any place looked at, or one that cannot be executed.
pub fn exec_engine() -> anyhow::Error {
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_else(|| OsString::from("frameseek"));
    let rest: Vec<OsString> = args.collect();
    let exe = std::env::current_exe().ok();
    let candidates = engine_candidates(exe.as_deref());
    if let Some(exe) = &exe {
        if let Err(e) = build_engine_under_cargo(exe) {
            return e;
        }
    }
    let mut tried = Vec::new();
    for path in &candidates {
        if !path.is_file() {
            tried.push(format!("{} (missing)", path.display()));
            continue;
        }
        // `exec` returns only on failure.
        let e = std::process::Command::new(path)
            .arg0(&argv0)
            .args(&rest)
            .exec();
        tried.push(format!("{} ({e})", path.display()));
    }
    anyhow::anyhow!(
        "this command needs {ENGINE_NAME}, which was not found or could not start; tried: {}. \
         Install the whole package, or build both binaries (cargo build --release)",
        tried.join(", ")
    )
}

/// Under `cargo run` (which builds only the binary it runs), builds the engine beside `exe`
/// with the same profile when it is missing or older than the library it was linked from,
/// so that `cargo run --release -- demo` works from a fresh clone and after an edit. Does
/// nothing unless cargo started this process (`CARGO` and `CARGO_MANIFEST_DIR` set) and `exe`
/// lies in a cargo profile folder (one with `.fingerprint/`). Under `cargo test` the engine
/// is never older (cargo links every binary for integration tests), so no build starts
/// while cargo holds its lock.
fn build_engine_under_cargo(exe: &Path) -> anyhow::Result<()> {
    let (Some(cargo), Some(manifest_dir)) = (
        std::env::var_os("CARGO"),
        std::env::var_os("CARGO_MANIFEST_DIR"),
    ) else {
        return Ok(());
    };
    let Some(profile_dir) = exe.parent() else {
        return Ok(());
    };
    let manifest = Path::new(&manifest_dir).join("Cargo.toml");
    if !profile_dir.join(".fingerprint").is_dir() || !manifest.is_file() {
        return Ok(());
    }
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let engine = modified(&profile_dir.join(ENGINE_NAME));
    // The library as the binaries link it (`deps/libframeseek-HASH.rlib`; the copy beside
    // the binaries is only refreshed by a build of the whole package).
    let library = std::fs::read_dir(profile_dir.join("deps"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("libframeseek-") && name.ends_with(".rlib")
        })
        .filter_map(|e| modified(&e.path()))
        .max();
    if engine.is_some() && engine >= library {
        return Ok(());
    }
    let Some(target_dir) = profile_dir.parent() else {
        return Ok(());
    };
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("debug");
    let mut build = std::process::Command::new(cargo);
    build
        .args(["build", "--bin", ENGINE_NAME, "--manifest-path"])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", target_dir);
    match profile {
        "debug" => {}
        "release" => {
            build.arg("--release");
        }
        other => {
            build.args(["--profile", other]);
        }
    }
    eprintln!(
        "frameseek: building {ENGINE_NAME} ({profile}), which `cargo run` does not build or update"
    );
    let status = build
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run cargo to build {ENGINE_NAME}: {e}"))?;
    anyhow::ensure!(
        status.success(),
        "cargo build --bin {ENGINE_NAME} failed ({status}); see its messages above"
    );
    Ok(())
}

/// The places the engine is looked for, in order: beside the running binary (a build folder,
/// or /usr/bin), then the package's private folder.
fn engine_candidates(current_exe: Option<&Path>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(dir) = current_exe.and_then(Path::parent) {
        out.push(dir.join(ENGINE_NAME));
    }
    let packaged = PathBuf::from(PACKAGED_ENGINE);
    if !out.contains(&packaged) {
        out.push(packaged);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_is_looked_for_beside_the_binary_then_in_the_package_folder() {
        assert_eq!(
            engine_candidates(Some(Path::new("/opt/fs/bin/frameseek"))),
            vec![
                PathBuf::from("/opt/fs/bin/frameseek-engine"),
                PathBuf::from(PACKAGED_ENGINE)
            ]
        );
        assert_eq!(
            engine_candidates(Some(Path::new("/usr/lib/frameseek/frameseek"))),
            vec![PathBuf::from(PACKAGED_ENGINE)]
        );
        assert_eq!(
            engine_candidates(None),
            vec![PathBuf::from(PACKAGED_ENGINE)]
        );
    }
}
