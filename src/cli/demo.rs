//! `frameseek demo`: the whole loop on the bundled model and generated footage. Renders
//! sample videos, starts `frameseek serve` on a temporary state folder and socket, ingests,
//! answers a few queries, and stops the daemon.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::{Cli, EXIT_FAILURE, EXIT_OK};
use crate::samples::{extract_frame, render_scene_video};

/// Models searched for when `--model` is not given, in order.
pub const BUNDLED_MODELS: &[&str] = &[
    "assets/models/frameseek-tiny",
    "assets/models/tiny-random-clip",
];

/// Arguments of `demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Model folder (default: the bundled model).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Work folder for footage, state and socket (default: a new temporary folder).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Extra text queries to run.
    #[arg(long = "query", value_name = "TEXT")]
    pub queries: Vec<String>,
}

/// Finds the bundled model beside the working directory or the executable.
pub fn bundled_model() -> Option<PathBuf> {
    let mut bases = vec![std::env::current_dir().ok()];
    if let Ok(exe) = std::env::current_exe() {
        bases.extend(
            exe.ancestors()
                .skip(1)
                .take(4)
                .map(|p| Some(p.to_path_buf())),
        );
    }
    for base in bases.into_iter().flatten() {
        for m in BUNDLED_MODELS {
            let p = base.join(m);
            if p.join("config.json").is_file() {
                return Some(p);
            }
        }
    }
    None
}

struct DaemonProcess(Child);

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
    }
}

fn frameseek(args: &[&str]) -> Command {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("frameseek"));
    let mut c = Command::new(exe);
    c.args(args);
    c
}

pub fn run(_cli: &Cli, args: &DemoArgs) -> anyhow::Result<u8> {
    let model = match &args.model {
        Some(m) => m.clone(),
        None => bundled_model().context("no bundled model found (looked for assets/models/ beside the working directory and the executable); pass --model DIR")?,
    };
    let model = model
        .canonicalize()
        .with_context(|| format!("model folder {}", model.display()))?;
    let _tmp;
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.canonicalize()?
        }
        None => {
            _tmp = TempDir::new()?;
            _tmp.0.clone()
        }
    };
    let footage = dir.join("footage");
    std::fs::create_dir_all(footage.join("cam1"))?;
    std::fs::create_dir_all(footage.join("cam2"))?;
    println!("== frameseek demo in {}", dir.display());
    println!("model: {}", model.display());
    println!("-- rendering sample footage with ffmpeg");
    let videos = [
        (
            footage.join("cam1/gate.mp4"),
            vec!["testsrc2", "smptehdbars", "mandelbrot"],
        ),
        (
            footage.join("cam2/yard.mp4"),
            vec!["rgbtestsrc", "color", "gradients"],
        ),
    ];
    for (path, sources) in &videos {
        let scenes = render_scene_video(path, sources, 10.0)?;
        let desc: Vec<String> = scenes
            .iter()
            .map(|s| format!("{} {:.0}-{:.0}s", s.name, s.start, s.end))
            .collect();
        println!("   {}: {}", path.display(), desc.join(", "));
    }
    let socket = dir.join("frameseek.sock");
    let config = dir.join("frameseek.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\nsocket = {:?}\nstate_dir = {:?}\nfootage_roots = [{:?}]\n\n[model]\npath = {:?}\ndevice = \"cpu\"\nbatch_size = 16\n",
            socket.display().to_string(),
            dir.join("state").display().to_string(),
            footage.display().to_string(),
            model.display().to_string()
        ),
    )?;
    let config_s = config.display().to_string();
    println!("-- starting the daemon: frameseek serve --config {config_s}");
    let log = std::fs::File::create(dir.join("daemon.log"))?;
    let child = frameseek(&["serve", "--config", &config_s])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("cannot start frameseek serve")?;
    let mut daemon = DaemonProcess(child);
    wait_for_socket(&socket, &mut daemon.0, &dir)?;
    let socket_s = socket.display().to_string();
    let client = |extra: &[&str]| -> anyhow::Result<bool> {
        let mut all = vec!["--socket", socket_s.as_str()];
        all.extend_from_slice(extra);
        println!("$ frameseek {}", extra.join(" "));
        Ok(frameseek(&all).status()?.success())
    };
    let footage_s = footage.display().to_string();
    if !client(&["ingest", "--wait", &footage_s])? {
        bail!("ingest failed; see {}", dir.join("daemon.log").display());
    }
    client(&["status"])?;
    let probe = dir.join("probe.png");
    extract_frame(&videos[1].0, 25.0, &probe)?;
    println!(
        "-- an image query: a frame taken from cam2/yard.mp4 at 0:00:25 (the 'gradients' scene)"
    );
    let probe_s = probe.display().to_string();
    client(&["search", "--image", &probe_s, "-k", "3"])?;
    let mut queries: Vec<String> = vec![
        "a red car on the left of a street".into(),
        "a person in green in a corridor".into(),
    ];
    queries.extend(args.queries.iter().cloned());
    for q in &queries {
        println!("-- a text query");
        client(&["search", q, "-k", "3"])?;
    }
    drop(daemon);
    println!(
        "-- daemon stopped; log in {}",
        dir.join("daemon.log").display()
    );
    let ok = std::fs::read_to_string(dir.join("daemon.log"))
        .map(|l| l.contains("stopped"))
        .unwrap_or(false);
    Ok(if ok { EXIT_OK } else { EXIT_FAILURE })
}

fn wait_for_socket(socket: &Path, child: &mut Child, dir: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if std::os::unix::net::UnixStream::connect(socket).is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            let log = std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default();
            bail!("the daemon exited ({status}):\n{log}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("the daemon did not open {} within 60 s", socket.display())
}

/// A temporary folder removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> std::io::Result<Self> {
        let base = std::env::temp_dir();
        for i in 0..1000u32 {
            let p = base.join(format!("frameseek-demo-{}-{i}", std::process::id()));
            if std::fs::create_dir(&p).is_ok() {
                return Ok(Self(p));
            }
        }
        Err(std::io::Error::other("cannot create a temporary folder"))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
