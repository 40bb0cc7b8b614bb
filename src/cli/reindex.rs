//! `frameseek reindex`: after a change of model, set the old database and index aside and
//! leave the daemon a list of the sources to read again at its next start.

use anyhow::bail;

use super::{Cli, EXIT_OK};
use crate::config::Config;

pub fn run(cli: &Cli) -> anyhow::Result<u8> {
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(socket) = &cli.socket {
        config.daemon.socket = socket.clone();
    }
    if std::os::unix::net::UnixStream::connect(&config.daemon.socket).is_ok() {
        bail!(
            "the daemon is running at {}; stop it first (systemctl stop frameseek)",
            config.daemon.socket.display()
        );
    }
    let state = &config.daemon.state_dir;
    let sources = crate::source::reindex::set_aside_for_reindex(state)?;
    println!(
        "{} sources will be read again with model {} when the daemon starts",
        sources.len(),
        config.model.path
    );
    println!(
        "the previous database and index are in {}",
        state.join("before-reindex").display()
    );
    Ok(EXIT_OK)
}
