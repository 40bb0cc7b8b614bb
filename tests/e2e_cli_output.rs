//! Every client command's human output (no `--json`) against the real daemon: column
//! headers, columns aligned, and the numbers and source ids equal to what `--json` of the
//! same daemon says; `embed` without a daemon; and the errors a person meets (no daemon:
//! exit 3; a refused request: exit 1), each with its message.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command that must succeed; returns its stdout.
fn ok(d: &DaemonGuard, args: &[&str]) -> String {
    let out = d.cli(args);
    assert!(
        out.status.success(),
        "{args:?}: exit {:?}\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr),
        d.log_text()
    );
    stdout(&out)
}

/// Parses the table whose header line holds `header` (column names separated by two
/// spaces or more): each row's cells, cut at the header's column starts. Checks the
/// alignment on the way: every cell starts at its column (the character before it is a
/// space and the one at it is not, unless the cell is empty) and the rows end at the first
/// empty line.
fn table(text: &str, header: &[&str]) -> Vec<Vec<String>> {
    let wanted = header.join("  ");
    let mut lines = text.lines();
    let head = lines
        .by_ref()
        .find(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .eq(header.iter().copied())
        })
        .unwrap_or_else(|| panic!("no header {wanted:?} in:\n{text}"));
    let starts: Vec<usize> = header
        .iter()
        .scan(0, |from, h| {
            let at = *from + head[*from..].find(h).unwrap();
            *from = at + h.len();
            Some(at)
        })
        .collect();
    let mut rows = Vec::new();
    for line in lines.take_while(|l| !l.is_empty()) {
        let chars: Vec<char> = line.chars().collect();
        let mut row = Vec::new();
        for (i, &s) in starts.iter().enumerate() {
            let end = starts
                .get(i + 1)
                .copied()
                .unwrap_or(chars.len())
                .min(chars.len());
            let cell: String = chars
                .get(s..end)
                .map(|c| c.iter().collect())
                .unwrap_or_default();
            if s > 0 && s < chars.len() {
                assert!(
                    chars[s - 1] == ' ' && (chars[s] != ' ' || cell.trim().is_empty()),
                    "column {:?} not aligned in {line:?}\n{text}",
                    header[i]
                );
            }
            row.push(cell.trim().to_string());
        }
        rows.push(row);
    }
    rows
}

/// Sample footage: `name` in the footage folder, `seconds` long.
fn video(env: &TestEnv, name: &str, seconds: u32) -> std::path::PathBuf {
    let path = env.footage().join(name);
    test_pattern_video(&path, seconds);
    path
}

#[test]
fn every_client_commands_table_matches_its_json() {
    let env = TestEnv::new();
    let a = video(&env, "a.mp4", 4);
    let b = video(&env, "b.mp4", 3);
    let (ida, idb) = (source_id(&a), source_id(&b));
    let d = env.start("sample_interval = 1.0\n");

    // ingest without --wait: one row per file, queued.
    let text = ok(&d, &["ingest", a.to_str().unwrap()]);
    let rows = table(&text, &["RESULT", "SOURCE", "NOTE"]);
    assert_eq!(
        rows,
        vec![vec!["queued".to_string(), ida.clone(), String::new()]],
        "{text}"
    );
    // ingest --wait: the table, then the summary with the frames `status` counts.
    let text = ok(&d, &["ingest", "--wait", b.to_str().unwrap()]);
    assert_eq!(
        table(&text, &["RESULT", "SOURCE", "NOTE"])[0][..2],
        ["queued", idb.as_str()]
    );
    wait_finished(&d, &[&ida, &idb]);
    let status = d.cli_json(&["status"]);
    let frames_b = source_status(&status, &idb)["frames"].as_u64().unwrap();
    assert!(
        text.contains(&format!("done: 1 files, {frames_b} frames")),
        "{text}"
    );
    // A refused path: its row says why, and the exit code is 1.
    let outside = env.dir().join("outside.mp4");
    std::fs::copy(&a, &outside).unwrap();
    let out = d.cli(&["ingest", outside.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let rows = table(&text, &["RESULT", "SOURCE", "NOTE"]);
    assert_eq!(rows.len(), 1, "{text}");
    assert_eq!(rows[0][..2], ["error", outside.to_str().unwrap()], "{text}");
    assert!(
        rows[0][2].contains("is outside the footage roots"),
        "{text}"
    );
    // Again: unchanged, with the count.
    let text = ok(&d, &["ingest", a.to_str().unwrap()]);
    let frames_a = source_status(&status, &ida)["frames"].as_u64().unwrap();
    assert_eq!(
        table(&text, &["RESULT", "SOURCE", "NOTE"]),
        vec![vec![
            "unchanged".to_string(),
            ida.clone(),
            format!("already indexed ({frames_a} frames)")
        ]]
    );

    // status: the summary line and one aligned row per source, as in --json.
    let text = ok(&d, &["status"]);
    let first = text.lines().next().unwrap();
    assert!(
        first.contains(&format!("{} frames, 0 queued", status["frames"])),
        "{text}"
    );
    let rows = table(
        &text,
        &["STATE", "DONE", "FRAMES", "DURATION", "SOURCE", "ERROR"],
    );
    assert_eq!(rows.len(), 2, "{text}");
    for s in status["sources"].as_array().unwrap() {
        let id = s["source"].as_str().unwrap();
        let row = rows
            .iter()
            .find(|r| r[4] == id)
            .unwrap_or_else(|| panic!("{id} in {text}"));
        assert_eq!(row[0], "done");
        assert_eq!(row[1], "100%");
        assert_eq!(row[2], s["frames"].to_string());
        assert_eq!(
            row[3],
            frameseek::cli::format_ms(s["duration_ms"].as_u64().unwrap())
        );
    }

    // stats: every header with its value (it panicked with 8 headers and 11 cells).
    let text = ok(&d, &["stats"]);
    let stats = d.cli_json(&["stats"]);
    let header = [
        "FRAMES",
        "INDEXED",
        "SOURCES",
        "QUEUE",
        "EMBEDDED",
        "BATCH_MS",
        "SEARCHES",
        "SEARCH_P50_MS",
        "SEARCH_P99_MS",
        "INDEX_MB",
        "UPTIME_S",
    ];
    let rows = table(&text, &header);
    assert_eq!(rows.len(), 1, "{text}");
    let row = &rows[0];
    assert_eq!(row[0], stats["frames"].to_string(), "{text}\n{stats}");
    assert_eq!(row[1], stats["indexed"].to_string());
    assert_eq!(row[2], "2");
    assert_eq!(row[3], "0");
    assert_eq!(row[4], stats["frames_embedded"].to_string());
    let index_mb = stats["index_bytes"].as_f64().unwrap() / 1e6;
    assert_eq!(row[9], format!("{index_mb:.1}"));
    let rates = table(&text, &["FRAMES_PER_S", "FRAMES", "SOURCE"]);
    for r in &rates {
        assert!(r[2] == ida || r[2] == idb, "{text}");
    }

    // search: ranked rows whose scores, times and sources are those of --json.
    let json = d.cli_json(&["search", "a test pattern", "-k", "3"]);
    let text = ok(&d, &["search", "a test pattern", "-k", "3"]);
    let rows = table(
        &text,
        &[
            "#", "SCORE", "CONF", "FROM", "TO", "BEST", "RECORDED", "REGION", "SOURCE",
        ],
    );
    let clips = json["clips"].as_array().unwrap();
    assert!(!clips.is_empty());
    assert_eq!(rows.len(), clips.len(), "{text}");
    for (i, (r, c)) in rows.iter().zip(clips).enumerate() {
        assert_eq!(r[0], (i + 1).to_string());
        assert_eq!(r[1], format!("{:.3}", c["score"].as_f64().unwrap()));
        let confidence = c["confidence"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&confidence), "{c}");
        assert_eq!(r[2], format!("{confidence:.2}"));
        assert_eq!(
            r[3],
            frameseek::cli::format_ms(c["start_ms"].as_u64().unwrap())
        );
        assert_eq!(
            r[4],
            frameseek::cli::format_ms(c["end_ms"].as_u64().unwrap())
        );
        let g = &c["region"];
        let f = |k: &str| g[k].as_f64().unwrap();
        assert_eq!(
            r[7],
            format!("{:.2},{:.2}+{:.2}x{:.2}", f("x"), f("y"), f("w"), f("h"))
        );
        assert_eq!(r[8], c["source"].as_str().unwrap());
    }
    // --min-confidence drops exactly the clips below it.
    let all = d.cli_json(&["search", "a test pattern", "-k", "10"]);
    let confidences: Vec<f64> = all["clips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["confidence"].as_f64().unwrap())
        .collect();
    let cut = confidences[confidences.len() / 2];
    let kept = d.cli_json(&[
        "search",
        "a test pattern",
        "-k",
        "10",
        "--min-confidence",
        &cut.to_string(),
    ]);
    let kept: Vec<f64> = kept["clips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["confidence"].as_f64().unwrap())
        .collect();
    assert_eq!(
        kept.len(),
        confidences.iter().filter(|&&c| c >= cut).count(),
        "{confidences:?} cut at {cut}: {kept:?}"
    );
    let bad = d.cli(&["search", "x", "--min-confidence", "1.5"]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("min_confidence must be between 0 and 1"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    // search --image: the same table, for a picture of one of the files.
    let picture = env.dir().join("query.jpg");
    ffmpeg(&[
        "-ss",
        "1",
        "-i",
        a.to_str().unwrap(),
        "-frames:v",
        "1",
        picture.to_str().unwrap(),
    ]);
    let json = d.cli_json(&["search", "--image", picture.to_str().unwrap()]);
    let text = ok(&d, &["search", "--image", picture.to_str().unwrap()]);
    let rows = table(
        &text,
        &[
            "#", "SCORE", "CONF", "FROM", "TO", "BEST", "RECORDED", "REGION", "SOURCE",
        ],
    );
    let sources: Vec<&str> = json["clips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["source"].as_str().unwrap())
        .collect();
    assert_eq!(
        rows.iter().map(|r| r[8].as_str()).collect::<Vec<_>>(),
        sources
    );
    // Nothing matches: said in words, and exit 1 as grep does.
    let out = d.cli(&["search", "x", "--source", "/nowhere/*"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "no matching footage\n");

    // search --html: the page's path and clip count.
    let page = env.dir().join("results.html");
    let text = ok(
        &d,
        &[
            "search",
            "a test pattern",
            "-k",
            "2",
            "--html",
            page.to_str().unwrap(),
        ],
    );
    let n = rows_of_json(&d, &["search", "a test pattern", "-k", "2"]);
    assert!(
        text.starts_with(&format!("wrote {} ({n} clips)\n", page.display())),
        "{text}"
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("a.mp4") || html.contains("b.mp4"));

    // export: the requested and written ranges, codec and files.
    let text = ok(
        &d,
        &["export", "--source", &ida, "--from", "1", "--to", "2"],
    );
    let (body, footer) = text.trim_end().rsplit_once('\n').unwrap();
    assert!(
        footer.starts_with("Clips are copied without re-encoding"),
        "{text}"
    );
    let rows = table(
        body,
        &["REQUESTED", "WRITTEN", "CODEC", "CLIP", "THUMBNAIL"],
    );
    assert_eq!(rows.len(), 1, "{text}");
    assert_eq!(rows[0][0], "0:00:01.000-0:00:02.000");
    assert!(rows[0][1].starts_with("0:00:01.000-"), "{text}");
    assert_eq!(rows[0][2], "h264");
    assert!(Path::new(&rows[0][3]).is_file() && Path::new(&rows[0][4]).is_file());

    // export of a search: one row per clip, in the search's order.
    let json = d.cli_json(&["export", "a test pattern", "-k", "2"]);
    let text = ok(&d, &["export", "a test pattern", "-k", "2"]);
    let (body, _) = text.trim_end().rsplit_once('\n').unwrap();
    let rows = table(
        body,
        &["REQUESTED", "WRITTEN", "CODEC", "CLIP", "THUMBNAIL"],
    );
    let clips: Vec<&str> = json["exports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["clip"].as_str().unwrap())
        .collect();
    assert_eq!(clips.len(), 2, "{json}");
    assert_eq!(
        rows.iter().map(|r| r[3].as_str()).collect::<Vec<_>>(),
        clips
    );

    // ingest --wait of a file that cannot be decoded: the failure on stderr, exit 1.
    let broken = env.footage().join("broken.mp4");
    std::fs::write(&broken, vec![7u8; 4096]).unwrap();
    let out = d.cli(&["ingest", "--wait", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.ends_with("done: 1 files, 0 frames\n"), "{text}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("failed: {}: ", source_id(&broken))),
        "{stderr}"
    );
    let status = d.cli_json(&["status"]);
    let error = source_status(&status, &source_id(&broken))["error"]
        .as_str()
        .unwrap()
        .to_string();
    // A failed source: status exits 4 (a health probe's failure), the table as usual.
    let out = d.cli(&["status"]);
    assert_eq!(out.status.code(), Some(4));
    let text = stdout(&out);
    let rows = table(
        &text,
        &["STATE", "DONE", "FRAMES", "DURATION", "SOURCE", "ERROR"],
    );
    let row = rows.iter().find(|r| r[4] == source_id(&broken)).unwrap();
    assert_eq!(row[0], "failed");
    assert!(row[5].ends_with(&error), "{text}");

    // eval: one row per query and the summary, equal to --json.
    let queries = env.dir().join("queries.jsonl");
    std::fs::write(
        &queries,
        format!(
            "{}\n",
            serde_json::json!({"query": "a test pattern", "source": ida, "start_s": 0, "end_s": 4})
        ),
    )
    .unwrap();
    let json = d.cli_json(&["eval", queries.to_str().unwrap()]);
    let text = ok(&d, &["eval", queries.to_str().unwrap()]);
    let (body, summary) = text.trim_end().rsplit_once('\n').unwrap();
    let rows = table(body, &["RANK", "EXPECTED", "TOP CLIP", "QUERY"]);
    assert_eq!(rows.len(), 1, "{text}");
    let rank = match json["results"][0]["rank"].as_u64() {
        Some(r) => r.to_string(),
        None => "miss".into(),
    };
    assert_eq!(rows[0][0], rank, "{text}\n{json}");
    assert_eq!(rows[0][1], format!("{ida} 0-4s"));
    assert_eq!(rows[0][3], "a test pattern");
    assert!(
        // The summary over all queries (issue 16: groups of queries get a line each).
        summary.starts_with(&format!(
            "all: queries 1  recall@1 {:.3}",
            json["recall_at_1"].as_f64().unwrap()
        )),
        "{text}\n{json}"
    );

    // forget: the frames it removed, as status counted them.
    let text = ok(&d, &["forget", &idb]);
    assert_eq!(text, format!("forgot {idb} ({frames_b} frames removed)\n"));

    // A refused request: exit 1, the daemon's code and message on stderr, nothing on stdout.
    let out = d.cli(&["forget", &idb]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("frameseek: not_found: no source {idb};")),
        "{stderr}"
    );
    // search's errors are 2 (1 means nothing matched).
    let out = d.cli(&["search", ""]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("frameseek: empty_query:"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The number of clips `--json` gives for `args`.
fn rows_of_json(d: &DaemonGuard, args: &[&str]) -> usize {
    d.cli_json(args)["clips"].as_array().unwrap().len()
}

#[test]
fn without_a_daemon_client_commands_exit_3_and_say_how_to_start_it() {
    let env = TestEnv::new();
    let socket = env.dir().join("none.sock");
    for args in [
        &["status"][..],
        &["stats"],
        &["search", "a car"],
        &["forget", "/x"],
        &["export", "--source", "/x", "--from", "0", "--to", "1"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_frameseek"))
            .arg("--socket")
            .arg(&socket)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{args:?}");
        assert!(out.stdout.is_empty());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            stderr,
            format!(
                "frameseek: daemon not running at {}: start it with `frameseek serve` (or `systemctl start frameseek`)\n",
                socket.display()
            ),
            "{args:?}"
        );
    }
}

#[test]
fn embed_prints_one_line_per_input_without_a_daemon() {
    let env = TestEnv::new();
    let picture = env.dir().join("p.jpg");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=64x64",
        "-frames:v",
        "1",
        picture.to_str().unwrap(),
    ]);
    let model = test_model();
    let run = |json: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_frameseek"));
        if json {
            c.arg("--json");
        }
        let out = c
            .args(["embed", "--device", "cpu", "--model"])
            .arg(&model)
            .args(["--text", "a red car", "--image"])
            .arg(&picture)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout(&out)
    };
    let json: Vec<serde_json::Value> = run(true)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let text = run(false);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    for (line, v) in lines.iter().zip(&json) {
        let vector = v["vector"].as_array().unwrap();
        let head: Vec<String> = vector
            .iter()
            .take(6)
            .map(|x| format!("{:+.4}", x.as_f64().unwrap()))
            .collect();
        let expected = format!(
            "{:<5}  {}-d  [{}, …]  {}",
            v["kind"].as_str().unwrap(),
            vector.len(),
            head.join(", "),
            v["input"].as_str().unwrap()
        );
        assert_eq!(*line, expected);
    }
    assert!(lines[0].starts_with("text ") && lines[0].ends_with("a red car"));
    assert!(lines[1].starts_with("image") && lines[1].ends_with(picture.to_str().unwrap()));
}
