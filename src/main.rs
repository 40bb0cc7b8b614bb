//! The `frameseek` binary: the lean client. It runs the commands that talk to the daemon
//! and execs `frameseek-engine` for the rest, so a client command starts without loading
//! FFmpeg's libraries (issue 17).

fn main() -> std::process::ExitCode {
    frameseek::cli::client_main()
}
