//! Vector index at scale (issue 5): usearch configured as `src/index.rs` configures it, with
//! the scalar kind as a parameter, against exact brute force (a plain matmul) in the same run.
//!
//! Data: N clustered, L2-normalised 512-d vectors (4,096 centroids plus Gaussian noise; each
//! 10 s "scene" of a source draws one centroid) over 100 sources, one frame a second, keyed
//! with `frameseek::store::frame_key(source_no, offset_ms)`. Queries are fresh points drawn
//! around random centroids (not stored vectors).
//!
//! Each scalar kind runs in its own child process (so memory figures do not mix):
//! - build: insert throughput, RSS growth, search latency (plain `search`, the catalog's
//!   pass-all filter, a 1 % source filter through usearch's `filtered_search`, and the same
//!   1 % filter the way frameseek runs it: `query::score_exactly` over that source's
//!   vectors read from a real sled store), each query alternating with brute force, recall@10
//!   against brute force, save time and disk size;
//! - open: time to first answer after a memory-mapped `view` and after a full `load`
//!   (alternating, 3 each, page cache warm), RSS after it, latency of the next queries.
//!
//! ```sh
//! cargo bench --bench index_scale -- --n 200000 --kinds f32,f16,i8 --queries 200
//! ```

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use candle_core::{CpuStorage, Device, Storage, Tensor};
use frameseek::index::{IndexPrecision, IndexSettings};
use frameseek::query::{exact_scan_applies, score_exactly};
use frameseek::store::{frame_key, split_key, Fingerprint, Store};
use usearch::{Index, IndexOptions};

mod support {
    pub mod synthetic;
}
use support::synthetic::{normalise, Rng};

const DIM: usize = 512;
const SOURCES: u32 = 100;
const CENTROIDS: usize = 4096;
const NOISE_NORM: f32 = 0.6;
const K: usize = 10;
const FILTER_SOURCE: u32 = 37;

#[derive(Clone, Debug)]
struct Args {
    n: usize,
    kinds: Vec<String>,
    queries: usize,
    dir: PathBuf,
    threads: usize,
    opens: usize,
    efs: Vec<usize>,
    child: Option<String>,
}

fn parse_args() -> Args {
    let mut a = Args {
        n: 200_000,
        kinds: vec!["f32".into(), "f16".into(), "i8".into()],
        queries: 200,
        dir: PathBuf::from("target/bench/index_scale"),
        threads: 1,
        opens: 3,
        efs: vec![64, 128, 256],
        child: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--n" => a.n = val().parse().expect("--n"),
            "--kinds" => a.kinds = val().split(',').map(str::to_string).collect(),
            "--queries" => a.queries = val().parse().expect("--queries"),
            "--dir" => a.dir = PathBuf::from(val()),
            "--threads" => a.threads = val().parse().expect("--threads"),
            "--opens" => a.opens = val().parse().expect("--opens"),
            "--efs" => {
                a.efs = val()
                    .split(',')
                    .map(|x| x.parse().expect("--efs"))
                    .collect()
            }
            "--child" => a.child = Some(val()),
            "--bench" => {}
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// The daemon's index options (`frameseek::index::options`) at the default
/// `expansion_search`, with the precision as a parameter.
fn options(kind: &str) -> IndexOptions {
    let precision = kind
        .parse::<IndexPrecision>()
        .unwrap_or_else(|e| panic!("--precision {kind}: {e}"));
    frameseek::index::options(
        DIM,
        &IndexSettings {
            precision,
            ..IndexSettings::default()
        },
    )
}

fn centroids() -> Vec<f32> {
    let mut rng = Rng(1);
    let mut c = vec![0f32; CENTROIDS * DIM];
    for row in c.chunks_mut(DIM) {
        rng.fill_normal(row, 1.0);
        normalise(row);
    }
    c
}

/// Frame `i`: source `i % 100 + 1`, offset `(i / 100)` seconds; one centroid per 10 s scene.
fn key_of(i: usize) -> u64 {
    frame_key((i as u32 % SOURCES) + 1, (i as u64 / SOURCES as u64) * 1000)
}

fn point(centroids: &[f32], c: usize, rng: &mut Rng, out: &mut [f32]) {
    rng.fill_normal(out, NOISE_NORM / (DIM as f32).sqrt());
    for (o, x) in out.iter_mut().zip(&centroids[c * DIM..(c + 1) * DIM]) {
        *o += x;
    }
    normalise(out);
}

fn data(n: usize, centroids: &[f32]) -> Vec<f32> {
    let mut v = vec![0f32; n * DIM];
    for (i, row) in v.chunks_mut(DIM).enumerate() {
        let (no, off) = split_key(key_of(i));
        let mut scene = Rng(u64::from(no) << 32 | (off / 10_000));
        let c = (scene.next() % CENTROIDS as u64) as usize;
        let mut rng = Rng(0xDA7A_0000_0000 + i as u64);
        point(centroids, c, &mut rng, row);
    }
    v
}

fn queries(q: usize, centroids: &[f32]) -> Vec<Vec<f32>> {
    let mut rng = Rng(0xC0FFEE);
    (0..q)
        .map(|_| {
            let c = (rng.next() % CENTROIDS as u64) as usize;
            let mut v = vec![0f32; DIM];
            point(centroids, c, &mut rng, &mut v);
            v
        })
        .collect()
}

fn proc_status(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|x| x.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

fn pct(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if s.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (s.len() - 1) as f64).round() as usize;
    s[i]
}

fn median(v: &[f64]) -> f64 {
    pct(v, 50.0)
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// The catalog's filter closure (`query::search::search`): offset range, allowed sources, known
/// sources, all evaluated on the key.
fn catalog_pass<'a>(
    sources: &'a HashMap<u32, ()>,
    allowed: Option<&'a HashSet<u32>>,
) -> impl Fn(u64) -> bool + 'a {
    let (lo, hi) = (0u64, u64::MAX);
    move |key: u64| {
        let (no, offset) = split_key(key);
        offset >= lo
            && offset <= hi
            && allowed.is_none_or(|a| a.contains(&no))
            && sources.contains_key(&no)
    }
}

/// Exact top-k by a plain matmul over every vector (2 threads via candle's gemm), with an
/// optional key mask applied to the scores, as one would in numpy.
fn brute(
    m: &Tensor,
    keys: &[u64],
    q: &[f32],
    k: usize,
    pass: Option<&dyn Fn(u64) -> bool>,
) -> Vec<u64> {
    let qt = Tensor::from_slice(q, (DIM, 1), &Device::Cpu).unwrap();
    let scores: Vec<f32> = m
        .matmul(&qt)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let mut idx: Vec<usize> = match pass {
        Some(p) => (0..scores.len()).filter(|&i| p(keys[i])).collect(),
        None => (0..scores.len()).collect(),
    };
    let k = k.min(idx.len());
    if k == 0 {
        return Vec::new();
    }
    idx.select_nth_unstable_by(k - 1, |&a, &b| scores[b].partial_cmp(&scores[a]).unwrap());
    idx.truncate(k);
    idx.sort_by(|&a, &b| scores[b].partial_cmp(&scores[a]).unwrap());
    idx.into_iter().map(|i| keys[i]).collect()
}

fn recall(got: &[u64], truth: &[u64]) -> f64 {
    if truth.is_empty() {
        return 1.0;
    }
    let t: HashSet<u64> = truth.iter().copied().collect();
    got.iter().filter(|k| t.contains(k)).count() as f64 / truth.len() as f64
}

fn index_path(a: &Args, kind: &str) -> PathBuf {
    a.dir.join(format!("n{}-{kind}.usearch", a.n))
}

fn child_build(a: &Args, kind: &str) -> serde_json::Value {
    let c = centroids();
    let t = Instant::now();
    let flat = data(a.n, &c);
    let gen_s = t.elapsed().as_secs_f64();
    let keys: Vec<u64> = (0..a.n).map(key_of).collect();
    let qs = queries(a.queries, &c);
    drop(c);
    let m = Tensor::from_vec(flat, (a.n, DIM), &Device::Cpu).unwrap();
    let (guard, _) = m.storage_and_layout();
    let rows: &[f32] = match &*guard {
        Storage::Cpu(CpuStorage::F32(v)) => v,
        _ => unreachable!(),
    };
    let rss0 = proc_status("VmRSS:");

    let index = Index::new(&options(kind)).unwrap();
    index
        .reserve_capacity_and_threads(a.n, a.threads.max(1))
        .unwrap();
    let t = Instant::now();
    std::thread::scope(|s| {
        for th in 0..a.threads.max(1) {
            let index = &index;
            let keys = &keys;
            s.spawn(move || {
                for i in (th..a.n).step_by(a.threads.max(1)) {
                    index.add(keys[i], &rows[i * DIM..(i + 1) * DIM]).unwrap();
                }
            });
        }
    });
    let add_s = t.elapsed().as_secs_f64();
    let rss1 = proc_status("VmRSS:");
    let mem_usage = index.memory_usage();

    // The daemon's path for a selective source filter: a sled store holding the filtered
    // source's frames (as ingest commits them, 256 per transaction), scored exactly.
    let store_dir = a.dir.join(format!("n{}-{kind}-sled", a.n));
    let _ = std::fs::remove_dir_all(&store_dir);
    let store = Store::open(&store_dir).unwrap();
    for no in 1..=FILTER_SOURCE {
        let rec = store
            .new_source(
                &format!("/bench/src{no}.mp4"),
                Fingerprint::default(),
                1.0,
                None,
            )
            .unwrap();
        assert_eq!(rec.no, no);
    }
    let selected: Vec<usize> = (0..a.n)
        .filter(|&i| split_key(key_of(i)).0 == FILTER_SOURCE)
        .collect();
    assert!(
        exact_scan_applies(selected.len() as u64, a.n as u64),
        "1 % of {} is not on the catalog's exact path",
        a.n
    );
    for chunk in selected.chunks(256) {
        let batch: Vec<(u64, &[f32])> = chunk
            .iter()
            .map(|&i| (keys[i], &rows[i * DIM..(i + 1) * DIM]))
            .collect();
        store.commit_frames(&batch).unwrap();
    }
    drop(guard);

    let sources: HashMap<u32, ()> = (1..=SOURCES).map(|no| (no, ())).collect();
    let allowed: HashSet<u32> = [FILTER_SOURCE].into_iter().collect();
    let pass_all = catalog_pass(&sources, None);
    let pass_one = catalog_pass(&sources, Some(&allowed));

    let mut lat: HashMap<&str, Vec<f64>> = HashMap::new();
    let mut rec: HashMap<&str, Vec<f64>> = HashMap::new();
    let mut truth: Vec<Vec<u64>> = Vec::with_capacity(qs.len());
    for q in &qs {
        // Alternate: index, brute force, index (catalog filter), index (1 %), brute (1 %).
        let t = Instant::now();
        let plain = index.search(q, K).unwrap();
        lat.entry("hnsw").or_default().push(ms(t));
        let t = Instant::now();
        let exact = brute(&m, &keys, q, K, None);
        lat.entry("brute").or_default().push(ms(t));
        let t = Instant::now();
        let all = index.filtered_search(q, K, &pass_all).unwrap();
        lat.entry("hnsw_catalog_all").or_default().push(ms(t));
        let t = Instant::now();
        let one = index.filtered_search(q, K, &pass_one).unwrap();
        lat.entry("hnsw_filter1").or_default().push(ms(t));
        let t = Instant::now();
        let exact_one = brute(&m, &keys, q, K, Some(&pass_one));
        lat.entry("brute_filter1").or_default().push(ms(t));
        let t = Instant::now();
        let scored = score_exactly(&store, [FILTER_SOURCE], (0, u64::MAX), q, &pass_one).unwrap();
        let catalog_one: Vec<u64> = scored.iter().take(K).map(|h| h.key).collect();
        lat.entry("catalog_exact_filter1").or_default().push(ms(t));
        rec.entry("hnsw")
            .or_default()
            .push(recall(&plain.keys, &exact));
        rec.entry("hnsw_catalog_all")
            .or_default()
            .push(recall(&all.keys, &exact));
        rec.entry("hnsw_filter1")
            .or_default()
            .push(recall(&one.keys, &exact_one));
        rec.entry("catalog_exact_filter1")
            .or_default()
            .push(recall(&catalog_one, &exact_one));
        truth.push(exact);
    }
    // The graph search at other `expansion_search` values, on the same index: plain k = 10,
    // and the daemon's way (`query::search::search` asks for max(8 k, 64) frames with its filter
    // and groups them; the top 10 frames of that are compared here).
    let mut sweep = Vec::new();
    for &ef in &a.efs {
        index.change_expansion_search(ef);
        let (mut plain_ms, mut plain_rec, mut daemon_ms, mut daemon_rec) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (q, exact) in qs.iter().zip(&truth) {
            let t = Instant::now();
            let plain = index.search(q, K).unwrap();
            plain_ms.push(ms(t));
            plain_rec.push(recall(&plain.keys, exact));
            let t = Instant::now();
            let wide = index
                .filtered_search(q, (8 * K).max(64), &pass_all)
                .unwrap();
            daemon_ms.push(ms(t));
            daemon_rec.push(recall(&wide.keys[..K.min(wide.keys.len())], exact));
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        sweep.push(serde_json::json!({
            "ef": ef,
            "plain_p50_ms": median(&plain_ms), "plain_p99_ms": pct(&plain_ms, 99.0),
            "plain_recall10": mean(&plain_rec),
            "daemon_p50_ms": median(&daemon_ms), "daemon_p99_ms": pct(&daemon_ms, 99.0),
            "daemon_recall10": mean(&daemon_rec),
        }));
    }
    drop(store);
    let _ = std::fs::remove_dir_all(&store_dir);
    std::fs::create_dir_all(&a.dir).unwrap();
    let path = index_path(a, kind);
    let t = Instant::now();
    index.save(&path.to_string_lossy()).unwrap();
    let save_s = t.elapsed().as_secs_f64();
    let disk = std::fs::metadata(&path).unwrap().len();
    let mut out = serde_json::json!({
        "kind": kind, "n": a.n, "threads": a.threads, "gen_s": gen_s,
        "add_s": add_s, "adds_per_s": a.n as f64 / add_s,
        "rss_before_add": rss0, "rss_after_add": rss1, "rss_index_delta": rss1.saturating_sub(rss0),
        "usearch_memory_usage": mem_usage, "vm_hwm": proc_status("VmHWM:"),
        "save_s": save_s, "disk_bytes": disk, "ef_sweep": sweep,
    });
    for (name, v) in &lat {
        out[format!("{name}_p50_ms")] = median(v).into();
        out[format!("{name}_p99_ms")] = pct(v, 99.0).into();
    }
    for (name, v) in &rec {
        out[format!("{name}_recall10")] = (v.iter().sum::<f64>() / v.len() as f64).into();
    }
    out
}

fn child_open(a: &Args, kind: &str, mode: &str) -> serde_json::Value {
    let qs = queries(a.queries.max(1), &centroids());
    let path = index_path(a, kind);
    let rss0 = proc_status("VmRSS:");
    let t = Instant::now();
    let index = Index::new(&options(kind)).unwrap();
    match mode {
        "view" => index.view(&path.to_string_lossy()).unwrap(),
        "load" => index.load(&path.to_string_lossy()).unwrap(),
        other => panic!("unknown open mode {other}"),
    }
    let opened_ms = ms(t);
    let first = index.search(&qs[0], K).unwrap();
    let first_ms = ms(t);
    assert_eq!(first.keys.len(), K);
    let rss_first = proc_status("VmRSS:");
    let mut lat = Vec::new();
    for q in &qs[1..] {
        let t = Instant::now();
        index.search(q, K).unwrap();
        lat.push(ms(t));
    }
    serde_json::json!({
        "kind": kind, "mode": mode, "open_ms": opened_ms, "first_answer_ms": first_ms,
        "rss_before": rss0, "rss_first_answer": rss_first, "rss_after_queries": proc_status("VmRSS:"),
        "next_p50_ms": median(&lat), "next_p99_ms": pct(&lat, 99.0),
    })
}

fn run_child(a: &Args, spec: &str) -> serde_json::Value {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args(["--child", spec, "--n", &a.n.to_string()])
        .args(["--queries", &a.queries.to_string()])
        .args(["--threads", &a.threads.to_string()])
        .args([
            "--efs",
            &a.efs
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(","),
        ])
        .arg("--dir")
        .arg(&a.dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| {
            panic!(
                "child {spec} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    serde_json::from_str(line).unwrap()
}

fn mb(v: &serde_json::Value) -> String {
    format!("{:.0}", v.as_f64().unwrap_or(0.0) / 1e6)
}

fn f(v: &serde_json::Value, prec: usize) -> String {
    format!("{:.*}", prec, v.as_f64().unwrap_or(f64::NAN))
}

fn main() {
    let a = parse_args();
    if let Some(spec) = &a.child {
        let parts: Vec<&str> = spec.split(':').collect();
        let out = match parts.as_slice() {
            ["build", kind] => child_build(&a, kind),
            ["open", kind, mode] => child_open(&a, kind, mode),
            _ => panic!("bad child spec {spec}"),
        };
        println!("RESULT {out}");
        return;
    }
    std::fs::create_dir_all(&a.dir).unwrap();
    eprintln!(
        "index_scale: n={} kinds={:?} queries={} threads={} usearch {} ({})",
        a.n,
        a.kinds,
        a.queries,
        a.threads,
        usearch::version(),
        usearch::hardware_acceleration_available()
    );
    let mut builds = Vec::new();
    let mut opens = Vec::new();
    for kind in &a.kinds {
        let b = run_child(&a, &format!("build:{kind}"));
        eprintln!("{b}");
        let mut view = Vec::new();
        let mut load = Vec::new();
        for _ in 0..a.opens {
            let v = run_child(&a, &format!("open:{kind}:view"));
            let l = run_child(&a, &format!("open:{kind}:load"));
            eprintln!("{v}\n{l}");
            view.push(v);
            load.push(l);
        }
        let _ = std::fs::remove_file(index_path(&a, kind));
        builds.push(b);
        opens.push((kind.clone(), view, load));
    }
    println!(
        "\nN = {}, {} queries, k = {K}, add threads = {}\n",
        a.n, a.queries, a.threads
    );
    println!("| kind | adds/s | p50 / p99 ms (plain) | p50 / p99 ms (catalog filter, pass-all) | p50 / p99 ms (1 % source filter, usearch filtered_search) | p50 / p99 ms (1 % source filter, frameseek: exact scoring from sled) | recall@10 plain / catalog / 1 % usearch / 1 % frameseek | brute force p50 / p99 ms (all) | brute force p50 / p99 ms (1 %) | RSS growth from adds MB | usearch memory_usage MB | disk MB | save s |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for b in &builds {
        println!(
            "| {} | {} | {} / {} | {} / {} | {} / {} | {} / {} | {} / {} / {} / {} | {} / {} | {} / {} | {} | {} | {} | {} |",
            b["kind"].as_str().unwrap(),
            f(&b["adds_per_s"], 0),
            f(&b["hnsw_p50_ms"], 2),
            f(&b["hnsw_p99_ms"], 2),
            f(&b["hnsw_catalog_all_p50_ms"], 2),
            f(&b["hnsw_catalog_all_p99_ms"], 2),
            f(&b["hnsw_filter1_p50_ms"], 2),
            f(&b["hnsw_filter1_p99_ms"], 2),
            f(&b["catalog_exact_filter1_p50_ms"], 2),
            f(&b["catalog_exact_filter1_p99_ms"], 2),
            f(&b["hnsw_recall10"], 3),
            f(&b["hnsw_catalog_all_recall10"], 3),
            f(&b["hnsw_filter1_recall10"], 3),
            f(&b["catalog_exact_filter1_recall10"], 3),
            f(&b["brute_p50_ms"], 1),
            f(&b["brute_p99_ms"], 1),
            f(&b["brute_filter1_p50_ms"], 1),
            f(&b["brute_filter1_p99_ms"], 1),
            mb(&b["rss_index_delta"]),
            mb(&b["usearch_memory_usage"]),
            mb(&b["disk_bytes"]),
            f(&b["save_s"], 2),
        );
    }
    println!("\nexpansion_search (HNSW ef) on the same index; \"daemon\" = `filtered_search` of max(8k, 64) frames with the catalog's predicate, its top 10 compared\n");
    println!("| kind | expansion_search | plain k = 10: p50 / p99 ms | recall@10 | daemon's search: p50 / p99 ms | recall@10 |");
    println!("|---|---|---|---|---|---|");
    for b in &builds {
        for e in b["ef_sweep"].as_array().into_iter().flatten() {
            println!(
                "| {} | {} | {} / {} | {} | {} / {} | {} |",
                b["kind"].as_str().unwrap(),
                e["ef"],
                f(&e["plain_p50_ms"], 2),
                f(&e["plain_p99_ms"], 2),
                f(&e["plain_recall10"], 3),
                f(&e["daemon_p50_ms"], 2),
                f(&e["daemon_p99_ms"], 2),
                f(&e["daemon_recall10"], 3),
            );
        }
    }
    println!("\n| kind | open | time to first answer ms (median of {}) | open only ms | process RSS at first answer MB | RSS after {} more queries MB | next queries p50 / p99 ms |", a.opens, a.queries.saturating_sub(1));
    println!("|---|---|---|---|---|---|---|");
    for (kind, view, load) in &opens {
        for (mode, runs) in [("view (mmap)", view), ("load", load)] {
            let col = |name: &str| -> Vec<f64> {
                runs.iter().map(|r| r[name].as_f64().unwrap()).collect()
            };
            println!(
                "| {kind} | {mode} | {:.1} | {:.1} | {:.0} | {:.0} | {:.2} / {:.2} |",
                median(&col("first_answer_ms")),
                median(&col("open_ms")),
                median(&col("rss_first_answer")) / 1e6,
                median(&col("rss_after_queries")) / 1e6,
                median(&col("next_p50_ms")),
                median(&col("next_p99_ms")),
            );
        }
    }
}
