//! `frameseek demo`: the whole loop on the bundled model and generated footage. Renders
//! the synthetic camera world's videos ([`crate::devkit::world`]), starts `frameseek serve`
//! on a temporary state folder and socket, ingests, answers a few queries with the ground
//! truth beside each clip, measures every labelled query with `frameseek eval`, and stops
//! the daemon. It fails (exit 1) when recall@5 misses [`RECALL_AT_5_TARGET`], and says
//! loudly when the model is the random-weight test model.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::eval::{read_queries, search_request, seconds_to_ms};
use super::{format_ms, Cli, EXIT_FAILURE, EXIT_OK};
use crate::client::Client;
use crate::devkit::world::{render_footage, sample_cameras, GroundTruthEvent, TimeOfDay};
use crate::eval::{EvalSummary, Expected, LabelledQuery};
use crate::protocol::{Clip, Request, SearchReply, SearchRequest};

/// Models searched for when `--model` is not given, in order.
pub const BUNDLED_MODELS: &[&str] = &[
    "assets/models/frameseek-tiny",
    "assets/models/tiny-random-clip",
];

/// The recall@5 the demo must measure over the sample world's labelled queries (complete
/// captions, held-out phrasings, filtered queries and an image query), or it fails with exit
/// code 1. The bundled `frameseek-tiny` (issue 16's retrain, default views) measures 1.000
/// (34 of 34 queries; recall@1 1.000 too); the random-weight `tiny-random-clip` measures 0.265,
/// what ranking clips by chance gives; 0.80 (at most 6 of 34 misses) leaves the shipped model
/// a wide margin and fails a model that learned nothing or was damaged.
pub const RECALL_AT_5_TARGET: f64 = 0.80;

/// The bundled model whose weights are random (a test fixture, not a search model).
const RANDOM_MODEL: &str = "tiny-random-clip";

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
    /// The recall@5 below which the demo fails (exit 1).
    #[arg(long, value_name = "SHARE", default_value_t = RECALL_AT_5_TARGET)]
    pub min_recall: f64,
}

/// Where the Debian package puts `assets/`, below the executable's prefix
/// (`/usr/bin/frameseek` or `/usr/lib/frameseek/frameseek-engine` ->
/// `/usr/share/frameseek/assets/models/…`).
pub const INSTALLED_ASSETS_BASE: &str = "share/frameseek";

/// Finds the bundled model beside the working directory or the executable, or where the
/// package installs it ([`INSTALLED_ASSETS_BASE`] under the executable's prefix).
pub fn bundled_model() -> Option<PathBuf> {
    let mut bases = vec![std::env::current_dir().ok()];
    if let Ok(exe) = std::env::current_exe() {
        bases.extend(
            exe.ancestors()
                .skip(1)
                .take(4)
                .map(|p| Some(p.to_path_buf())),
        );
        // The prefix is two levels up from a binary in `bin/`, three from the engine in
        // `lib/frameseek/`.
        bases.extend(
            exe.ancestors()
                .skip(2)
                .take(2)
                .map(|prefix| Some(prefix.join(INSTALLED_ASSETS_BASE))),
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

/// Runs `demo`: renders the sample world's footage, starts a daemon on it with the bundled
/// model, ingests, shows a few queries with the ground truth beside each clip, runs
/// `frameseek eval` on every labelled query, and stops the daemon.
pub fn run(_cli: &Cli, args: &DemoArgs) -> anyhow::Result<u8> {
    let model = match &args.model {
        Some(m) => m.clone(),
        None => bundled_model().context("no bundled model found (looked for assets/models/ beside the working directory and the executable); pass --model DIR")?,
    };
    let model = model
        .canonicalize()
        .with_context(|| format!("model folder {}", model.display()))?;
    let random = model.file_name().is_some_and(|n| n == RANDOM_MODEL);
    let random_warning = format!(
        "WARNING: {} has RANDOM weights (a test fixture): its search results are meaningless",
        model.display()
    );
    if random {
        eprintln!("{random_warning}");
        if args.model.is_none() {
            eprintln!(
                "WARNING: the trained model (assets/models/frameseek-tiny) was not found; fell back to the random one"
            );
        }
    }
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
    println!("== frameseek demo in {}", dir.display());
    println!("model: {}", model.display());
    println!("-- rendering the sample world's camera footage with ffmpeg");
    let world = render_footage(&footage, 1)?;
    for cam in sample_cameras() {
        let events: Vec<String> = cam
            .appearances
            .iter()
            .map(|a| {
                format!(
                    "{} {} {:.0}-{:.0}s",
                    a.kind.phrase(),
                    a.position.phrase(),
                    a.start_s,
                    a.end_s
                )
            })
            .collect();
        let night = if cam.time == TimeOfDay::Night {
            " at night"
        } else {
            ""
        };
        println!(
            "   {}/footage.mp4 ({}{night}, {:.0} s): {}",
            cam.name,
            cam.background.noun(),
            cam.duration_s,
            events.join("; ")
        );
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
    let mut connection = Client::connect(&socket)?;
    let mut shown: Vec<LabelledQuery> = world
        .queries
        .iter()
        .filter(|q| {
            matches!(
                q.query.as_deref(),
                Some("a white van on the left of a parking lot at night")
                    | Some("a person in green on the right of a corridor")
                    | Some("a red car on the right of a street at night")
                    | Some("a dog on the left of a street")
            ) || q.image.is_some()
        })
        .cloned()
        .collect();
    shown.extend(args.queries.iter().map(|text| LabelledQuery {
        query: Some(text.clone()),
        ..Default::default()
    }));
    let base = footage.canonicalize()?;
    for q in &shown {
        match (&q.query, &q.image) {
            (Some(text), _) => println!("-- a text query: frameseek search {text:?} -k 3"),
            (None, Some(image)) => println!(
                "-- an image query: frameseek search --image {} -k 3 (cam4's scene at {:.1} s rendered anew, not a frame of its video)",
                base.join(image).display(),
                (q.start_s + q.end_s) / 2.0
            ),
            (None, None) => continue,
        }
        let request = search_request(q, &base, 3)?;
        let request = SearchRequest {
            k: Some(3),
            ..request
        };
        let reply: SearchReply = connection.call_as(&Request::Search(request))?;
        let expected = (!q.source.is_empty()).then(|| Expected {
            source: q.source.clone(),
            start_ms: (q.start_s * 1000.0) as u64,
            end_ms: (q.end_s * 1000.0) as u64,
        });
        if let Some(e) = &expected {
            println!("   expected: {} {:.0}-{:.0}s", e.source, q.start_s, q.end_s);
        }
        for (i, c) in reply.clips.iter().enumerate() {
            let verdict = match &expected {
                Some(e) if e.is_hit(c) => "  <- right",
                Some(_) => "",
                None => "",
            };
            println!(
                "   #{} {:.3} {} {}-{}  in view: {}{verdict}",
                i + 1,
                c.score,
                c.source
                    .strip_prefix(&format!("{}/", base.display()))
                    .unwrap_or(&c.source),
                format_ms(c.start_ms),
                format_ms(c.end_ms),
                in_view(&world.ground_truth, &base, c)
            );
        }
    }
    let queries_file = footage.join("queries.jsonl").display().to_string();
    println!("-- every labelled query of the sample world, measured");
    client(&["eval", &queries_file])?;
    let summary = measure(&mut connection, Path::new(&queries_file), &base)?;
    drop(connection);
    drop(daemon);
    println!(
        "-- daemon stopped; log in {}",
        dir.join("daemon.log").display()
    );
    let stopped = std::fs::read_to_string(dir.join("daemon.log"))
        .map(|l| l.contains("stopped"))
        .unwrap_or(false);
    println!("== summary");
    if random {
        println!("   {random_warning}");
    }
    let met = summary.recall_at_5 >= args.min_recall;
    println!(
        "   recall@5 {:.3} over {} labelled queries; target {:.2}: {}",
        summary.recall_at_5,
        summary.queries,
        args.min_recall,
        if met { "met" } else { "MISSED" }
    );
    if !met {
        eprintln!(
            "demo failed: recall@5 {:.3} is below the target {:.2} (the bundled frameseek-tiny measures 1.000; the random-weight tiny-random-clip measures 0.265)",
            summary.recall_at_5, args.min_recall
        );
    }
    if !stopped {
        eprintln!("demo failed: the daemon did not stop cleanly; see its log");
    }
    Ok(if met && stopped {
        EXIT_OK
    } else {
        EXIT_FAILURE
    })
}

/// Recall over every labelled query of `queries`, as `frameseek eval` measures it.
fn measure(client: &mut Client, queries: &Path, base: &Path) -> anyhow::Result<EvalSummary> {
    let mut ranks = Vec::new();
    for q in read_queries(queries)? {
        let request = search_request(&q, base, 10)?;
        let reply: SearchReply = client.call_as(&Request::Search(request))?;
        let expected = Expected {
            source: q.source.clone(),
            start_ms: seconds_to_ms(q.start_s),
            end_ms: seconds_to_ms(q.end_s),
        };
        ranks.push(expected.first_hit_rank(&reply.clips));
    }
    Ok(EvalSummary::from_ranks(&ranks))
}

/// What the ground truth says is visible at a clip's best frame.
fn in_view(truth: &[GroundTruthEvent], base: &Path, clip: &Clip) -> String {
    let t = clip.best_ms as f64 / 1000.0;
    let seen: Vec<String> = truth
        .iter()
        .filter(|e| base.join(&e.source).display().to_string() == clip.source)
        .filter(|e| e.start_s <= t && t < e.end_s)
        .map(|e| format!("{} {}", e.object_phrase(), e.position_phrase()))
        .collect();
    if seen.is_empty() {
        "nothing".into()
    } else {
        seen.join(", ")
    }
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
