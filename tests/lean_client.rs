//! The lean `frameseek` binary (issue 17): it must not load FFmpeg, CUDA or any other heavy
//! library, so that a client command starts in a few milliseconds, and it hands the other
//! commands to `frameseek-engine`. Its start-up time is a bench (tools/bench/startup.py),
//! not a test; this checks what the time depends on: the binary's ELF dependencies.
//!
//! If the first test fails, code reachable from a client command (`cli::client_main`) now
//! calls into FFmpeg, candle or CUDA, or the build links with a linker that keeps the
//! libraries of unreachable code (see docs/ARCHITECTURE.md, "Two binaries").

use std::path::Path;
use std::process::Command;

/// Shared-library name prefixes the lean client must not need.
const HEAVY: &[&str] = &[
    "libavcodec",
    "libavformat",
    "libavutil",
    "libavdevice",
    "libavfilter",
    "libswscale",
    "libswresample",
    "libpostproc",
    "libcuda",
    "libcudart",
    "libcublas",
    "libcurand",
    "libnvrtc",
    "libnvcuvid",
    "libva",
    "libvdpau",
    "libOpenCL",
];

fn u16_at(b: &[u8], at: usize) -> usize {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap()) as usize
}
fn u32_at(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// The DT_NEEDED entries of a 64-bit little-endian ELF file (its dynamic section, names
/// from the string table that section links to).
fn needed_libraries(path: &Path) -> Vec<String> {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..4], b"\x7fELF", "{} is not an ELF file", path.display());
    assert_eq!(
        (b[4], b[5]),
        (2, 1),
        "expected a 64-bit little-endian ELF file"
    );
    let (shoff, shentsize, shnum) = (
        u64_at(&b, 0x28) as usize,
        u16_at(&b, 0x3a),
        u16_at(&b, 0x3c),
    );
    let section = |i: usize| shoff + i * shentsize;
    let dynamic = (0..shnum)
        .map(section)
        .find(|&s| u32_at(&b, s + 4) == 6) // SHT_DYNAMIC
        .expect("no dynamic section: a static binary?");
    let (offset, size) = (
        u64_at(&b, dynamic + 0x18) as usize,
        u64_at(&b, dynamic + 0x20) as usize,
    );
    let strtab = u64_at(&b, section(u32_at(&b, dynamic + 0x28)) + 0x18) as usize;
    let mut names = Vec::new();
    for entry in (offset..offset + size).step_by(16) {
        match u64_at(&b, entry) {
            0 => break, // DT_NULL
            1 => {
                // DT_NEEDED: an offset into the string table.
                let start = strtab + u64_at(&b, entry + 8) as usize;
                let len = b[start..].iter().position(|&c| c == 0).unwrap();
                names.push(String::from_utf8_lossy(&b[start..start + len]).into_owned());
            }
            _ => {}
        }
    }
    names
}

fn engine() -> std::path::PathBuf {
    Path::new(env!("CARGO_BIN_EXE_frameseek")).with_file_name("frameseek-engine")
}

#[test]
fn the_client_binary_needs_no_ffmpeg_or_cuda_library_and_the_engine_does() {
    let client = needed_libraries(Path::new(env!("CARGO_BIN_EXE_frameseek")));
    assert!(
        client.iter().any(|n| n.starts_with("libc.so")),
        "{client:?}"
    );
    let heavy: Vec<&String> = client
        .iter()
        .filter(|n| HEAVY.iter().any(|h| n.starts_with(h)))
        .collect();
    assert!(
        heavy.is_empty(),
        "the lean client needs {heavy:?} (all: {client:?})"
    );
    // The same reader finds FFmpeg in the engine, so an empty list above is not a misread.
    let engine = needed_libraries(&engine());
    assert!(
        engine.iter().any(|n| n.starts_with("libavcodec")),
        "{engine:?}"
    );
}

#[test]
fn both_binaries_describe_the_same_command_line() {
    for args in [
        &["--version"][..],
        &["--help"],
        &["search", "--help"],
        &["serve", "--help"],
    ] {
        let client = Command::new(env!("CARGO_BIN_EXE_frameseek"))
            .args(args)
            .output()
            .unwrap();
        let engine = Command::new(engine()).args(args).output().unwrap();
        assert!(client.status.success(), "{args:?}: {client:?}");
        assert_eq!(
            String::from_utf8_lossy(&client.stdout),
            String::from_utf8_lossy(&engine.stdout),
            "{args:?}"
        );
    }
}

#[test]
fn an_engine_command_without_the_engine_names_the_places_it_looked() {
    if Path::new("/usr/lib/frameseek/frameseek-engine").exists() {
        eprintln!("the package's engine is installed here: it would be found; not checked");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lone = dir.path().join("frameseek");
    std::fs::copy(env!("CARGO_BIN_EXE_frameseek"), &lone).unwrap();
    // Not under cargo: the lean binary would otherwise build a missing engine (for `cargo
    // run`); here it lies outside a cargo target folder anyway.
    let run = |args: &[&str]| {
        Command::new(&lone)
            .args(args)
            .env_remove("CARGO")
            .env_remove("CARGO_MANIFEST_DIR")
            .output()
            .unwrap()
    };
    let out = run(&["doctor"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let beside = dir.path().join("frameseek-engine");
    assert!(
        stderr.contains(&format!("{} (missing)", beside.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains("/usr/lib/frameseek/frameseek-engine (missing)"),
        "{stderr}"
    );
    // A client command still runs without the engine.
    let out = run(&["completions", "bash"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("frameseek"));
    // Under --json the refusal is a JSON error, as for every command.
    let out = run(&["--json", "doctor"]);
    let error: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("frameseek-engine"),
        "{error}"
    );
}
