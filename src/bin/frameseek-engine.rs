//! The `frameseek-engine` binary: the whole program (daemon, demo, embedding, decoding,
//! doctor, benches). `frameseek` execs it for those commands; it runs client commands too.

fn main() -> std::process::ExitCode {
    frameseek::cli::engine_main()
}
