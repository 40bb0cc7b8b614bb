//! Delivery of each new incident: a log line, the observer (the daemon's `alerts follow`
//! subscribers), and the alert's exec hook: the program run directly (no shell) with the
//! incident as JSON on its standard input, its output discarded, killed after
//! `alerts.hook_timeout`, at most `alerts.hook_concurrency` at once.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::{AlertError, AlertSettings, Incident};

/// Sees each new incident once, on the thread that recorded it; must not block.
pub type IncidentObserver = Box<dyn Fn(&Incident) + Send + Sync>;

/// Hooks waiting for a free slot beyond which new ones are dropped (with an error line).
const MAX_WAITING_HOOKS: usize = 1000;

/// The process groups of the exec hooks running now (each hook leads a group of its own),
/// so that [`stop_running_hooks`] can end them when the daemon stops.
static RUNNING_HOOKS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// How long a hook has, once asked to stop (SIGTERM), before it is killed (SIGKILL).
const HOOK_STOP_GRACE: Duration = Duration::from_millis(500);

/// Ends every running exec hook and what it started: SIGTERM to each hook's process group,
/// then SIGKILL after a short grace. Called when the daemon stops; without it a hook (in a
/// process group of its own, so that a timeout can kill its children) would run on orphaned.
pub(super) fn stop_running_hooks() {
    let groups = RUNNING_HOOKS.lock().expect("running hooks").clone();
    if groups.is_empty() {
        return;
    }
    for &g in &groups {
        // SAFETY: signals a process group this process started (the hook's pid is its id).
        unsafe { libc::kill(-g, libc::SIGTERM) };
    }
    let deadline = Instant::now() + HOOK_STOP_GRACE;
    // SAFETY: signal 0 only checks whether the group still has a process.
    let alive = |g: i32| unsafe { libc::kill(-g, 0) } == 0;
    while groups.iter().any(|&g| alive(g)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for &g in &groups {
        // SAFETY: as above.
        unsafe { libc::kill(-g, libc::SIGKILL) };
    }
    tracing::info!(
        hooks = groups.len(),
        "exec hooks still running were stopped with the daemon"
    );
}

/// Keeps a hook's process group in [`RUNNING_HOOKS`] while it runs.
struct RunningHook(i32);

impl RunningHook {
    fn new(group: i32) -> Self {
        RUNNING_HOOKS.lock().expect("running hooks").push(group);
        Self(group)
    }
}

impl Drop for RunningHook {
    fn drop(&mut self) {
        RUNNING_HOOKS
            .lock()
            .expect("running hooks")
            .retain(|&g| g != self.0);
    }
}

/// Checks that an exec hook's program is an executable file inside one of `dirs`.
pub(super) fn check_program(program: &str, dirs: &[PathBuf]) -> Result<(), AlertError> {
    use std::os::unix::fs::PermissionsExt;
    if dirs.is_empty() {
        return Err(AlertError::Invalid(
            "exec hooks are off: list the folders whose programs alerts may run in alerts.exec_dirs (frameseek.toml)".into(),
        ));
    }
    let path = Path::new(program);
    if !path.is_absolute() {
        return Err(AlertError::Invalid(format!(
            "exec program {program:?} must be an absolute path (it is run without a shell)"
        )));
    }
    let real = path
        .canonicalize()
        .map_err(|e| AlertError::Invalid(format!("exec program {program}: {e}")))?;
    let inside = dirs
        .iter()
        .filter_map(|d| d.canonicalize().ok())
        .any(|d| real.starts_with(d));
    if !inside {
        return Err(AlertError::Invalid(format!(
            "exec program {program} is outside alerts.exec_dirs ({}); put it in one of them",
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let meta = std::fs::metadata(&real)
        .map_err(|e| AlertError::Invalid(format!("exec program {program}: {e}")))?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(AlertError::Invalid(format!(
            "exec program {program} is not an executable file"
        )));
    }
    Ok(())
}

/// Free hook slots and hooks waiting for one.
#[derive(Debug, Default)]
struct Slots {
    busy: Mutex<usize>,
    freed: Condvar,
    waiting: AtomicUsize,
}

pub(super) struct Deliver {
    observer: IncidentObserver,
    slots: Arc<Slots>,
    limit: usize,
    timeout: Duration,
}

impl Deliver {
    pub(super) fn new(settings: &AlertSettings, observer: IncidentObserver) -> Self {
        Self {
            observer,
            slots: Arc::new(Slots::default()),
            limit: settings.hook_concurrency.max(1),
            timeout: Duration::from_secs_f64(settings.hook_timeout.max(0.001)),
        }
    }

    /// Logs the incident, hands it to the observer and starts its hook.
    pub(super) fn deliver(&self, incident: &Incident, exec: &[String]) {
        tracing::info!(
            alert = %incident.alert,
            source = %incident.source,
            start_ms = incident.start_ms,
            end_ms = incident.end_ms,
            best_ms = incident.best_ms,
            confidence = incident.confidence,
            "incident"
        );
        (self.observer)(incident);
        let Some((program, args)) = exec.split_first() else {
            return;
        };
        if self.slots.waiting.fetch_add(1, Ordering::SeqCst) >= MAX_WAITING_HOOKS {
            self.slots.waiting.fetch_sub(1, Ordering::SeqCst);
            tracing::error!(alert = %incident.alert, "exec hook dropped: {MAX_WAITING_HOOKS} hooks are waiting");
            return;
        }
        let json = serde_json::to_string(incident).expect("incidents serialise");
        let (program, args) = (program.clone(), args.to_vec());
        let (slots, limit, timeout) = (self.slots.clone(), self.limit, self.timeout);
        let alert = incident.alert.clone();
        let spawned = std::thread::Builder::new()
            .name("alert-hook".into())
            .spawn(move || {
                {
                    let mut busy = slots.busy.lock().expect("hook slots");
                    while *busy >= limit {
                        busy = slots.freed.wait(busy).expect("hook slots");
                    }
                    *busy += 1;
                }
                slots.waiting.fetch_sub(1, Ordering::SeqCst);
                run_hook(&alert, &program, &args, &json, timeout);
                *slots.busy.lock().expect("hook slots") -= 1;
                slots.freed.notify_one();
            });
        if let Err(e) = spawned {
            self.slots.waiting.fetch_sub(1, Ordering::SeqCst);
            tracing::error!(alert = %incident.alert, error = %e, "cannot start an exec hook thread");
        }
    }
}

/// Runs one hook to its end or its timeout, and logs how it went.
fn run_hook(alert: &str, program: &str, args: &[String], json: &str, timeout: Duration) {
    let started = Instant::now();
    // In a process group of its own, so that a timeout kills what it started too (a script's
    // children would otherwise run on, orphaned).
    let mut command = Command::new(program);
    command
        .process_group(0)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: prctl is async-signal-safe; it only asks the kernel to kill the hook when the
    // thread that started it (this one, which waits for it) dies: a daemon killed with
    // SIGKILL takes its hooks along.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(alert, program, error = %e, "exec hook cannot start");
            return;
        }
    };
    let _running = i32::try_from(child.id()).ok().map(RunningHook::new);
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that exits without reading its input is not an error.
        let _ = stdin.write_all(json.as_bytes());
        let _ = stdin.write_all(b"\n");
    }
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => {
                tracing::debug!(
                    alert,
                    program,
                    ms = started.elapsed().as_millis() as u64,
                    "exec hook done"
                );
                return;
            }
            Ok(Some(status)) => {
                tracing::warn!(alert, program, %status, "exec hook failed");
                return;
            }
            Ok(None) if started.elapsed() >= timeout => {
                if let Ok(pgid) = i32::try_from(child.id()) {
                    // SAFETY: signals the hook's own process group (its id is the hook's pid).
                    unsafe { libc::kill(-pgid, libc::SIGKILL) };
                }
                let _ = child.kill();
                let _ = child.wait();
                tracing::warn!(
                    alert,
                    program,
                    timeout_s = timeout.as_secs_f64(),
                    "exec hook killed: it ran past alerts.hook_timeout"
                );
                return;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                tracing::error!(alert, program, error = %e, "exec hook lost");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// Whether process `pid` has ended (gone, or a zombie nobody reaped yet).
    fn ended(pid: i32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z')),
        }
    }

    #[test]
    fn a_hook_still_running_when_the_daemon_stops_is_ended_with_what_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        let hook = dir.path().join("hook.sh");
        std::fs::write(
            &hook,
            format!(
                "#!/bin/sh\nsleep 300 &\necho $$ $! > {}.tmp\nmv {0}.tmp {0}\nwait\n",
                pids.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
        let program = hook.display().to_string();
        let runner = std::thread::spawn(move || {
            run_hook("t", &program, &[], "{}", Duration::from_secs(600));
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while !pids.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let started: Vec<i32> = std::fs::read_to_string(&pids)
            .expect("the hook started")
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        assert_eq!(started.len(), 2, "{started:?}");
        assert!(started.iter().all(|&p| !ended(p)), "{started:?}");

        stop_running_hooks();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !started.iter().all(|&p| ended(p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            started.iter().all(|&p| ended(p)),
            "the hook or its child outlived the stop: {started:?}"
        );
        runner.join().unwrap();
        assert!(RUNNING_HOOKS.lock().unwrap().is_empty());
    }
}
