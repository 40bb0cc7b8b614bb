//! A real full disk (ENOSPC) during ingest, on the real daemon: the state folder is a small
//! tmpfs (`mount -t tmpfs`, or inside `unshare --user --map-root-user --mount` where a plain
//! mount is refused), filled with a file while a source is being ingested. Ingest must stop
//! with a clear error in `status`, searches go on, nothing committed is lost; once the file
//! is deleted, ingest resumes on its own and finishes without duplicates.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const TMPFS_MB: u64 = 64;

/// How the small file system was made.
enum SmallFs {
    /// Mounted here (unmounted on drop).
    Mounted(PathBuf),
    /// Mounted inside the daemon's own user + mount namespace (dies with it).
    Namespace(Vec<String>),
}

impl SmallFs {
    /// Tries a plain mount, then a mount inside `unshare`; panics if neither works.
    fn make(state: &Path) -> Self {
        std::fs::create_dir_all(state).unwrap();
        let size = format!("size={TMPFS_MB}m");
        let plain = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &size, "tmpfs"])
            .arg(state)
            .output();
        if plain.as_ref().is_ok_and(|o| o.status.success()) {
            return Self::Mounted(state.to_path_buf());
        }
        let script = format!("mount -t tmpfs -o {size} tmpfs \"$0\" && exec \"$@\"");
        let wrapper: Vec<String> = [
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            &script,
            state.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let probe = Command::new(&wrapper[0])
            .args(&wrapper[1..])
            .arg("true")
            .output();
        if probe.as_ref().is_ok_and(|o| o.status.success()) {
            return Self::Namespace(wrapper);
        }
        panic!(
            "cannot make a small file system for the full-disk test: `mount -t tmpfs` failed ({:?}) and so did `unshare --user --map-root-user --mount` ({:?}); run the tests as root or where user namespaces are allowed",
            plain.map(|o| String::from_utf8_lossy(&o.stderr).into_owned()),
            probe.map(|o| String::from_utf8_lossy(&o.stderr).into_owned()),
        );
    }

    fn wrapper(&self) -> &[String] {
        match self {
            Self::Mounted(_) => &[],
            Self::Namespace(w) => w,
        }
    }

    /// `path` as this process must name it to reach the daemon's tmpfs.
    fn reach(&self, d: &DaemonGuard, path: &Path) -> PathBuf {
        match self {
            Self::Mounted(_) => path.to_path_buf(),
            Self::Namespace(_) => {
                let pid = d.child.as_ref().unwrap().id();
                Path::new(&format!("/proc/{pid}/root")).join(path.strip_prefix("/").unwrap())
            }
        }
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        if let Self::Mounted(dir) = self {
            let _ = Command::new("umount").arg("-l").arg(&*dir).status();
        }
    }
}

/// Fills the file system holding `dir` with `filler`, then frees `room` bytes.
fn fill(filler: &Path, room: u64) {
    let mut f = std::fs::File::create(filler).unwrap();
    let mut chunk = vec![0x5au8; 1 << 20];
    loop {
        match f.write_all(&chunk) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                if chunk.len() <= 4096 {
                    break;
                }
                let half = chunk.len() / 2;
                chunk.truncate(half);
            }
            Err(e) => panic!("filling {}: {e}", filler.display()),
        }
    }
    let _ = f.sync_all();
    let len = f.metadata().unwrap().len();
    f.set_len(len.saturating_sub(room)).unwrap();
}

fn status_until(
    d: &DaemonGuard,
    what: &str,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let status = d.cli_json(&["status"]);
        if ok(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {status}\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every frame is its own clip (clip_gap below the interval): (source, best_ms) of all.
fn all_frames(d: &DaemonGuard) -> Vec<(String, u64)> {
    let r = d.cli_json(&["search", "anything", "-k", "1000"]);
    let mut v: Vec<(String, u64)> = r["clips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["source"].as_str().unwrap().to_string(),
                c["best_ms"].as_u64().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_full_disk_stops_ingest_keeps_what_was_committed_and_recovers() {
    let env = TestEnv::new();
    let a = env.footage().join("a.mp4");
    let b = env.footage().join("b.mp4");
    for (path, secs) in [(&a, 20), (&b, 300)] {
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=s=160x120:r=2:d={secs}"),
            "-c:v",
            "libx264",
            path.to_str().unwrap(),
        ]);
    }
    let state = env.dir().join("state");
    let fs = SmallFs::make(&state);
    let settings = "clip_gap = 0.1\ncheckpoint_frames = 8\nresume_free_mb = 4\n";
    let mut d = env.start_wrapped(settings, &test_model(), fs.wrapper());
    d.ingest_wait(&[&a]);
    let before = all_frames(&d);
    assert_eq!(before.len(), 20);

    // Leave 256 KB, then ingest 300 frames: a commit or a checkpoint hits ENOSPC.
    let filler = fs.reach(&d, &state.join("filler"));
    fill(&filler, 256 << 10);
    let _ = d.cli(&["ingest", b.to_str().unwrap()]);
    let status = status_until(&d, "ingest did not stop on the full disk", |s| {
        !s["ingest_error"].is_null()
    });
    let message = status["ingest_error"].as_str().unwrap();
    assert!(message.contains("disk full"), "{message}");
    assert!(
        message.contains(state.to_str().unwrap()),
        "names the folder: {message}"
    );
    assert!(message.contains("Free space"), "says what to do: {message}");
    assert!(d.log_text().contains("ingest stopped"), "{}", d.log_text());
    let (source_a, source_b) = (source_id(&a), source_id(&b));
    let b_frames = |s: &serde_json::Value| {
        s["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["source"] == source_b.as_str())
            .map(|x| {
                (
                    x["state"].as_str().unwrap().to_string(),
                    x["frames"].as_u64().unwrap(),
                )
            })
    };
    if let Some((state, frames)) = b_frames(&status) {
        assert_ne!(
            state, "failed",
            "a full disk is not the file's fault: {status}"
        );
        assert!(
            frames < 300,
            "the disk did not fill before b was done: {status}"
        );
    }
    // Searches go on and nothing committed is lost.
    std::thread::sleep(Duration::from_millis(500));
    let during = all_frames(&d);
    for f in &before {
        assert!(during.contains(f), "{f:?} lost");
    }
    assert_eq!(
        source_status(&d.cli_json(&["status"]), &source_a)["frames"],
        20
    );
    // A new ingest request is refused with the same reason, not lost silently.
    let refused = d.cli_json(&["ingest", a.to_str().unwrap()]);
    assert!(refused.to_string().contains("disk full"), "{refused}");

    // Space comes back: ingest resumes on its own and b finishes, without duplicates.
    std::fs::remove_file(&filler).unwrap();
    let status = status_until(&d, "ingest did not resume", |s| {
        s["ingest_error"].is_null() && b_frames(s).is_some_and(|(st, _)| st == "done")
    });
    assert_eq!(b_frames(&status), Some(("done".into(), 300)), "{status}");
    assert_eq!(status["frames"], 320);
    assert!(
        d.log_text().contains("disk space is back"),
        "{}",
        d.log_text()
    );
    let after = all_frames(&d);
    assert_eq!(after.len(), 320, "index and store agree, no duplicates");
    for f in &before {
        assert!(after.contains(f), "{f:?} lost");
    }
    let mut dedup = after.clone();
    dedup.dedup();
    assert_eq!(dedup.len(), after.len());

    // Completely full, a second time: stop and recovery repeat (the recovery reopens the
    // database each time, which is what a failed sled write needs).
    let c = env.footage().join("c.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=160x120:r=2:d=10",
        "-c:v",
        "libx264",
        c.to_str().unwrap(),
    ]);
    let filler = fs.reach(&d, &state.join("filler"));
    fill(&filler, 0);
    // The request may come before or after the full disk stops ingest: accepted, it must be
    // done once space is back; refused, it must say why (and is asked again below).
    let asked = d.cli(&["ingest", c.to_str().unwrap()]);
    let refused = !asked.status.success();
    eprintln!(
        "the ingest asked on the full disk was {}",
        if refused { "refused" } else { "accepted" }
    );
    if refused {
        // A refused path is a row of the table (stdout, result `error`, the reason in NOTE);
        // a refused request is an error line (stderr).
        let why = format!(
            "{}{}",
            String::from_utf8_lossy(&asked.stdout),
            String::from_utf8_lossy(&asked.stderr)
        );
        assert!(why.contains("disk full"), "{why}");
    }
    let status = status_until(&d, "ingest did not stop on the full disk", |s| {
        !s["ingest_error"].is_null()
    });
    assert!(
        status["ingest_error"]
            .as_str()
            .unwrap()
            .contains("disk full"),
        "{status}"
    );
    let during = all_frames(&d);
    let kept = after.iter().filter(|f| during.contains(f)).count();
    assert_eq!(
        kept,
        after.len(),
        "searches go on, nothing committed is lost"
    );
    std::fs::remove_file(&filler).unwrap();
    if refused {
        status_until(&d, "ingest did not resume", |s| s["ingest_error"].is_null());
        let again = d.cli(&["ingest", c.to_str().unwrap()]);
        assert!(
            again.status.success(),
            "{}",
            String::from_utf8_lossy(&again.stderr)
        );
    }
    let source_c = source_id(&c);
    let status = status_until(&d, "ingest did not resume", |s| {
        s["ingest_error"].is_null()
            && s["sources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["source"] == source_c.as_str() && x["state"] == "done")
    });
    assert_eq!(source_status(&status, &source_c)["frames"], 10, "{status}");
    assert_eq!(status["frames"], 330);
    let after = all_frames(&d);
    assert_eq!(after.len(), 330);

    // Durable: a restart sees the same (the namespace's tmpfs dies with the daemon).
    if let SmallFs::Mounted(_) = fs {
        d.stop();
        let d = env.start(settings);
        assert_eq!(d.cli_json(&["status"])["frames"], 330);
        assert_eq!(all_frames(&d), after);
    }
}
