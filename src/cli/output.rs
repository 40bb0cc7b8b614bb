//! How client commands print: colour (`--color`, `NO_COLOR`, `color` in client.toml) and
//! JSON errors under `--json`.

use std::io::IsTerminal;

/// When to colour the table headers and state words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set to a non-empty value.
    Auto,
    /// Always, even into a pipe.
    Always,
    /// Never.
    Never,
}

impl ColorChoice {
    /// Whether to colour, given whether stdout is a terminal and the value of `NO_COLOR`
    /// (<https://no-color.org>: any non-empty value turns colour off in `auto`).
    pub fn enabled(self, terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
        match self {
            Self::Always => true,
            Self::Never => false,
            Self::Auto => terminal && no_color.is_none_or(|v| v.is_empty()),
        }
    }

    /// [`ColorChoice::enabled`] for this process's stdout and environment.
    pub fn enabled_here(self) -> bool {
        self.enabled(
            std::io::stdout().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        )
    }
}

/// A style for a word in a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Column headers: bold.
    Header,
    /// Things working as they should (`done`): green.
    Good,
    /// Things in progress (`ingesting`, `queued`): yellow.
    Busy,
    /// Failures (`failed`, `INGEST STOPPED`): bold red.
    Bad,
}

/// `text` in `style` when `color` is on; `text` unchanged otherwise.
pub fn paint(text: &str, style: Style, color: bool) -> String {
    if !color {
        return text.to_string();
    }
    let code = match style {
        Style::Header => "1",
        Style::Good => "32",
        Style::Busy => "33",
        Style::Bad => "1;31",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// The style of a source state word (`done`, `failed`, ...).
pub fn state_style(state: &str) -> Style {
    match state {
        "done" => Style::Good,
        "failed" => Style::Bad,
        _ => Style::Busy,
    }
}

/// How a client command shows things: colour on or off, and the time zone of its times.
#[derive(Debug, Clone)]
pub struct Display {
    /// Colour the table headers and state words.
    pub color: bool,
    /// The zone times are shown (and local time arguments read) in.
    pub tz: jiff::tz::TimeZone,
}

/// The lines of a formatted table with its header line (the first) in bold when `color`.
pub fn bold_header(table: &str, color: bool) -> String {
    match table.split_once('\n') {
        Some((head, rest)) if color => format!("{}\n{rest}", paint(head, Style::Header, true)),
        _ => table.to_string(),
    }
}

/// One `--json` error line: `{"error":{"code":…,"message":…}}`.
pub fn json_error(code: &str, message: &str) -> String {
    serde_json::json!({ "error": { "code": code, "message": message } }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn no_color_and_the_flag_decide_colour() {
        assert!(ColorChoice::Auto.enabled(true, None));
        assert!(!ColorChoice::Auto.enabled(false, None));
        assert!(!ColorChoice::Auto.enabled(true, Some(OsStr::new("1"))));
        // An empty NO_COLOR does not count (no-color.org).
        assert!(ColorChoice::Auto.enabled(true, Some(OsStr::new(""))));
        assert!(ColorChoice::Always.enabled(false, Some(OsStr::new("1"))));
        assert!(!ColorChoice::Never.enabled(true, None));
    }

    #[test]
    fn painting_is_a_no_op_without_colour() {
        assert_eq!(paint("done", Style::Good, false), "done");
        assert_eq!(paint("done", Style::Good, true), "\x1b[32mdone\x1b[0m");
        assert_eq!(state_style("failed"), Style::Bad);
    }

    #[test]
    fn only_the_header_line_is_bold() {
        assert_eq!(bold_header("A  B\n1  2\n", false), "A  B\n1  2\n");
        assert_eq!(
            bold_header("A  B\n1  2\n", true),
            "\x1b[1mA  B\x1b[0m\n1  2\n"
        );
    }

    #[test]
    fn json_errors_have_code_and_message() {
        let v: serde_json::Value =
            serde_json::from_str(&json_error("not_found", "no \"x\"")).unwrap();
        assert_eq!(v["error"]["code"], "not_found");
        assert_eq!(v["error"]["message"], "no \"x\"");
    }
}
