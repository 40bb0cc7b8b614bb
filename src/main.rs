//! The `frameseek` binary: a thin shell over the library's command line.

fn main() -> std::process::ExitCode {
    frameseek::cli::main()
}
