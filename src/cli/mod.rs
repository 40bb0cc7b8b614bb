//! The `frameseek` command line: argument definitions, and one module per command.

mod alert;
mod demo;
mod doctor;
mod embed;
mod eval;
mod export;
mod html;
mod ingest;
mod launch;
mod reindex;
mod search;
mod serve;
mod show_config;
mod status;
mod world;

pub mod client_settings;
pub mod output;
pub mod progress;
pub mod when;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::client::{Client, ClientError};

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: the command failed (bad input, failed sources, an error reply).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code of `search` when nothing matched (as grep's).
pub const EXIT_NO_MATCH: u8 = 1;
/// Exit code of `search` on an error other than an unreachable daemon (as grep's).
pub const EXIT_SEARCH_ERROR: u8 = 2;
/// Exit code of `status` when ingest is stopped or stalled, or a source failed: the
/// daemon answers but needs attention (a health probe's failure).
pub const EXIT_UNHEALTHY: u8 = 4;
/// Exit code: bad usage (from clap).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the daemon could not be reached.
pub const EXIT_NO_DAEMON: u8 = 3;

/// Search video footage with words.
#[derive(Debug, Parser)]
// `bin_name`: `frameseek-engine` run by hand shows the same usage as `frameseek`, which
// users type (the engine keeps `frameseek`'s argv[0] when exec'd anyway).
#[command(
    name = "frameseek",
    bin_name = "frameseek",
    version,
    about,
    propagate_version = true
)]
pub struct Cli {
    /// Configuration file layered over the defaults and /etc/frameseek/frameseek.toml.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Daemon socket (default: $FRAMESEEK_SOCKET, then `socket` in
    /// ~/.config/frameseek/client.toml, then daemon.socket from the system configuration).
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Print JSON for scripts instead of tables (errors too, on stderr).
    #[arg(long, global = true)]
    pub json: bool,
    /// Colour in tables: auto (a terminal, unless NO_COLOR is set), always or never
    /// (default: `color` in client.toml, else auto).
    #[arg(long, global = true, value_name = "WHEN")]
    pub color: Option<output::ColorChoice>,
    /// Show times in UTC instead of the local time zone (`time_zone` in client.toml, else
    /// the system's).
    #[arg(long, global = true)]
    pub utc: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Every command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon.
    Serve,
    /// Ask the daemon to index video files or folders.
    Ingest(ingest::IngestArgs),
    /// Find clips matching a text or an image.
    Search(search::SearchArgs),
    /// Write matching clips (stream copy, no re-encode) and a JPEG of each one's best frame
    /// into the daemon's export folder: the top clips of a search, or a source's time range.
    Export(export::ExportArgs),
    /// Show the daemon's model, frame count and per-source progress.
    Status(status::StatusArgs),
    /// Show the daemon's counters (`--format prometheus` for node_exporter's textfile
    /// collector).
    Stats(status::StatsArgs),
    /// Remove a source's frames from the index (or, with --node, a retired node's frames
    /// from the shared Milvus).
    Forget {
        /// The source id, as `status` shows it.
        #[arg(required_unless_present = "node")]
        source: Option<String>,
        /// Instead of a source: every frame of this node in the shared Milvus.
        #[arg(long, value_name = "NAME", conflicts_with = "source")]
        node: Option<String>,
    },
    /// Print embeddings of images and texts, without a daemon.
    Embed(embed::EmbedArgs),
    /// Generate sample footage, start a daemon on it, ingest, query, stop.
    Demo(demo::DemoArgs),
    /// Measure image-embedding throughput (a model folder or random ViT-B/32, ViT-L/14).
    #[command(hide = true)]
    BenchEmbed(crate::devkit::bench::embed::BenchEmbedArgs),
    /// Measure text-query embedding latency.
    #[command(hide = true)]
    BenchText(crate::devkit::bench::text::BenchTextArgs),
    /// Time the decode-and-sample stage alone on one file.
    #[command(hide = true)]
    BenchDecode(crate::devkit::bench::decode::BenchDecodeArgs),
    /// Set the index aside so the daemon re-embeds every source from its files at its next
    /// start (after a change of model). Run while the daemon is stopped.
    Reindex,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Measure search quality on labelled queries: recall@1/5/10 and mean reciprocal rank.
    Eval(eval::EvalArgs),
    /// Generate the synthetic test world: training images or sample footage.
    #[command(hide = true)]
    World(world::WorldArgs),
    /// Check the setup: configuration, model, FFmpeg, socket, footage access, disk, index.
    Doctor(doctor::DoctorArgs),
    /// Print the merged configuration, each value with the layer it came from.
    Config,
    /// Write the man pages (frameseek.1 and one per command) into a folder (packaging).
    #[command(hide = true)]
    Manpages {
        /// The folder to write into.
        dir: PathBuf,
    },
    /// Manage standing queries: add, list, remove.
    Alert(alert::AlertArgs),
    /// Incidents of the standing queries: follow them live, or list the recent ones.
    Alerts(alert::AlertsArgs),
}

/// The lean `frameseek` binary's whole `main`: parses arguments, runs a client command
/// (one that only talks to the daemon, or prints from the command line's definition) here,
/// and replaces itself with `frameseek-engine` for every other command (see [`launch`]).
/// Nothing here reaches FFmpeg, candle or the store, so the binary loads none of their
/// libraries (`tests/lean_client.rs` checks its ELF dependencies).
pub fn client_main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    if cli.command.runs_in_engine() {
        return finish(Err(launch::exec_engine()), cli.json, false);
    }
    let (json, is_search) = (cli.json, matches!(cli.command, Command::Search(_)));
    finish(run_client(&cli), json, is_search)
}

/// The `frameseek-engine` binary's whole `main`: parses the same arguments and runs any
/// command, client commands included.
pub fn engine_main() -> ExitCode {
    // Sets an environment variable (no thread, no library work): before any thread exists.
    crate::embed::init_quantised_threads();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let (json, is_search) = (cli.json, matches!(cli.command, Command::Search(_)));
    finish(run_engine(&cli), json, is_search)
}

/// Prints a failed command's error (as JSON under `--json`) and maps it to the exit status.
fn finish(result: anyhow::Result<u8>, json: bool, is_search: bool) -> ExitCode {
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::from(EXIT_OK);
            }
            let (code, mut exit) = error_code(&e);
            // `search` exits 1 when nothing matched, as grep does, so its errors are 2.
            if is_search && exit == EXIT_FAILURE {
                exit = EXIT_SEARCH_ERROR;
            }
            if json {
                eprintln!("{}", output::json_error(code, &format!("{e:#}")));
            } else {
                eprintln!("frameseek: {e:#}");
            }
            exit
        }
    };
    ExitCode::from(code)
}

/// A command line clap refused: its own message (and exit 2), or under `--json` the same as
/// a JSON error with code `usage`. `--help` and `--version` print as usual.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let wants_json = std::env::args_os().any(|a| a == "--json");
    let informational = matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if wants_json && !informational {
        eprintln!("{}", output::json_error("usage", e.to_string().trim()));
        return ExitCode::from(EXIT_USAGE);
    }
    e.exit()
}

/// The error code (`--json`) and exit status of a failed command: the daemon's own code for
/// a refused request (docs/PROTOCOL.md), a client-side code otherwise.
fn error_code(e: &anyhow::Error) -> (&'static str, u8) {
    match e.chain().find_map(|c| c.downcast_ref::<ClientError>()) {
        Some(ClientError::NotRunning(_)) => ("not_running", EXIT_NO_DAEMON),
        Some(ClientError::PermissionDenied(_)) => ("permission_denied", EXIT_NO_DAEMON),
        Some(ClientError::Io { .. }) => ("connection_lost", EXIT_FAILURE),
        Some(ClientError::Refused(body)) => (body.code.as_str(), EXIT_FAILURE),
        None => ("failed", EXIT_FAILURE),
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

impl Command {
    /// Whether the command decodes, embeds, opens the state or runs the daemon, and so runs
    /// in `frameseek-engine` (the lean `frameseek` execs it).
    fn runs_in_engine(&self) -> bool {
        matches!(
            self,
            Command::Serve
                | Command::Embed(_)
                | Command::Demo(_)
                | Command::BenchEmbed(_)
                | Command::BenchText(_)
                | Command::BenchDecode(_)
                | Command::Reindex
                | Command::Eval(_)
                | Command::World(_)
                | Command::Doctor(_)
        )
    }
}

/// Runs a command that needs the engine, or a client command.
fn run_engine(cli: &Cli) -> anyhow::Result<u8> {
    match &cli.command {
        Command::Serve => serve::run(cli),
        Command::Embed(args) => embed::run(cli, args),
        Command::Demo(args) => demo::run(cli, args),
        Command::BenchEmbed(args) => {
            crate::devkit::bench::embed::run(args, cli.json).map(|()| EXIT_OK)
        }
        Command::BenchText(args) => {
            crate::devkit::bench::text::run(args, cli.json).map(|()| EXIT_OK)
        }
        Command::BenchDecode(args) => crate::devkit::bench::decode::run(args).map(|()| EXIT_OK),
        Command::Reindex => reindex::run(cli),
        Command::World(args) => world::run(cli, args),
        Command::Eval(args) => eval::run(cli, args),
        Command::Doctor(args) => doctor::run(cli, args),
        _ => run_client(cli),
    }
}

/// Runs a client command: one that talks to the daemon over its socket, or prints from the
/// configuration or the command line's definition.
fn run_client(cli: &Cli) -> anyhow::Result<u8> {
    match &cli.command {
        Command::Ingest(args) => ingest::run(cli, args),
        Command::Search(args) => search::run(cli, args),
        Command::Alert(args) => alert::run_alert(cli, args),
        Command::Alerts(args) => alert::run_alerts(cli, args),
        Command::Export(args) => export::run(cli, args),
        Command::Status(args) => status::run_status(cli, args),
        Command::Stats(args) => status::run_stats(cli, args),
        Command::Forget { source, node } => {
            status::run_forget(cli, source.as_deref(), node.as_deref())
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "frameseek",
                &mut std::io::stdout(),
            );
            Ok(EXIT_OK)
        }
        Command::Config => show_config::run(cli),
        Command::Manpages { dir } => write_manpages(dir).map(|()| EXIT_OK),
        other => anyhow::bail!("internal error: {other:?} runs in frameseek-engine"),
    }
}

/// Writes `frameseek.1` and `frameseek-COMMAND.1` for every visible command into `dir`.
fn write_manpages(dir: &Path) -> anyhow::Result<()> {
    use anyhow::Context;
    use clap::CommandFactory;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let top = Cli::command();
    let write = |name: &str, cmd: clap::Command| -> anyhow::Result<()> {
        let path = dir.join(format!("{name}.1"));
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut out)?;
        std::fs::write(&path, out).with_context(|| format!("cannot write {}", path.display()))
    };
    for sub in top.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("frameseek-{}", sub.get_name());
        let cmd = sub
            .clone()
            .display_name(name.clone())
            .bin_name(format!("frameseek {}", sub.get_name()));
        write(&name, cmd)?;
    }
    write("frameseek", top)
}

/// The socket a client command talks to (see [`client_settings::socket`]): never loads or
/// validates the daemon's configuration, so a bad daemon-only key cannot break a client.
fn socket_path(cli: &Cli) -> anyhow::Result<PathBuf> {
    Ok(client_settings::socket(cli.socket.as_deref(), cli.config.as_deref())?.0)
}

fn connect(cli: &Cli) -> anyhow::Result<Client> {
    Ok(Client::connect(&socket_path(cli)?)?)
}

/// Makes a path absolute against the working directory without resolving links (the
/// daemon resolves and checks it).
fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    }
}

/// Formats milliseconds as `H:MM:SS.mmm`.
pub fn format_ms(ms: u64) -> String {
    let s = ms / 1000;
    format!(
        "{}:{:02}:{:02}.{:03}",
        s / 3600,
        (s / 60) % 60,
        s % 60,
        ms % 1000
    )
}

/// Prints rows as an aligned table with a header (see [`format_table`]).
fn print_table(header: &[&str], rows: &[Vec<String>]) {
    print!("{}", format_table(header, rows));
}

/// Formats rows as an aligned table with a header: each column as wide as its widest cell
/// (in characters), two spaces between columns, no trailing spaces. A row shorter than the
/// header leaves its last columns empty and a longer one gets unnamed columns: a mismatch
/// is a bug of the caller (the tests of each command catch it), never a panic here.
fn format_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).fold(header.len(), usize::max);
    let mut widths = vec![0usize; columns];
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for r in std::iter::once(&header).chain(rows) {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, w) in widths.iter().enumerate() {
            let cell = r.get(i).map(String::as_str).unwrap_or("");
            line.push_str(cell);
            if i + 1 < columns {
                let pad = w - cell.chars().count() + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_format_as_clock_time() {
        assert_eq!(format_ms(0), "0:00:00.000");
        assert_eq!(format_ms(3_723_456), "1:02:03.456");
    }

    #[test]
    fn tables_align_columns_by_characters() {
        let t = format_table(
            &["A", "LONG_HEADER", "C"],
            &[
                vec!["wide cell".into(), "1".into(), "x".into()],
                vec!["é".into(), "22".into(), "".into()],
            ],
        );
        assert_eq!(
            t,
            "A          LONG_HEADER  C\nwide cell  1            x\né          22\n"
        );
    }

    #[test]
    fn a_header_and_cell_mismatch_never_panics() {
        // More cells than headers (the `stats` table of issue 15 had 8 and 11).
        let t = format_table(&["A", "B"], &[vec!["1".into(), "2".into(), "3".into()]]);
        assert_eq!(t, "A  B\n1  2  3\n");
        // Fewer cells than headers.
        let t = format_table(&["A", "B", "C"], &[vec!["1".into()]]);
        assert_eq!(t, "A  B  C\n1\n");
        assert_eq!(format_table(&[], &[]), "\n");
    }

    #[test]
    fn errors_map_to_the_protocol_s_codes_and_the_documented_exits() {
        use crate::protocol::{ErrorBody, ErrorCode};
        let refused = anyhow::Error::new(ClientError::Refused(ErrorBody {
            code: ErrorCode::NotFound,
            message: "no source /x".into(),
        }))
        .context("cannot export /x");
        assert_eq!(error_code(&refused), ("not_found", EXIT_FAILURE));
        let down = anyhow::Error::new(ClientError::NotRunning("/s".into()));
        assert_eq!(error_code(&down), ("not_running", EXIT_NO_DAEMON));
        let denied = anyhow::Error::new(ClientError::PermissionDenied("/s".into()));
        assert_eq!(error_code(&denied), ("permission_denied", EXIT_NO_DAEMON));
        assert_eq!(
            error_code(&anyhow::anyhow!("bad input")),
            ("failed", EXIT_FAILURE)
        );
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
