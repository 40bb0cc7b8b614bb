//! Progress lines for long client commands (`ingest --wait`, `export`): done, rate and ETA,
//! drawn on stderr only when it is a terminal and not under `--json`.

use std::io::IsTerminal;
use std::time::Duration;

/// Formats a duration as `45s`, `3m05s` or `2h07m`.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s / 60) % 60)
    }
}

/// One progress line: `N unit, R unit/s, ETA T`, where `done` counts the units so far and
/// `fraction` (0 to 1) is how much of the whole work is done (the ETA is omitted without
/// it, and `-` until some work is done). Never panics, whatever the numbers.
pub fn format_progress(done: u64, fraction: Option<f64>, unit: &str, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let mut line = format!("{done} {unit}");
    if secs > 0.0 && done > 0 {
        line.push_str(&format!(", {:.1} {unit}/s", done as f64 / secs));
    } else {
        line.push_str(&format!(", - {unit}/s"));
    }
    if let Some(f) = fraction {
        let eta = if f > 0.0 && f.is_finite() && secs > 0.0 {
            let left = (secs * (1.0 - f.min(1.0)) / f).clamp(0.0, 1e9);
            format_duration(Duration::from_secs_f64(left))
        } else {
            "-".into()
        };
        line.push_str(&format!(", ETA {eta}"));
    }
    line
}

/// Whether progress should be drawn: stderr is a terminal and output is not JSON.
pub fn wanted(json: bool) -> bool {
    !json && std::io::stderr().is_terminal()
}

/// A progress bar on stderr, hidden (drawing nothing) when not [`wanted`].
pub fn bar(json: bool, len: u64) -> indicatif::ProgressBar {
    let bar = if wanted(json) {
        indicatif::ProgressBar::new(len)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {percent:>3}% {msg}")
            .expect("valid template"),
    );
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_have_rate_and_eta() {
        assert_eq!(
            format_progress(50, Some(0.25), "frames", Duration::from_secs(10)),
            "50 frames, 5.0 frames/s, ETA 30s"
        );
        assert_eq!(
            format_progress(0, Some(0.0), "frames", Duration::from_secs(10)),
            "0 frames, - frames/s, ETA -"
        );
        assert_eq!(
            format_progress(3, None, "clips", Duration::from_millis(1500)),
            "3 clips, 2.0 clips/s"
        );
        assert_eq!(
            format_progress(1, Some(0.5), "frames", Duration::from_secs(3600)),
            "1 frames, 0.0 frames/s, ETA 1h00m"
        );
        assert_eq!(
            format_progress(9, Some(1.0), "clips", Duration::from_secs(3)),
            "9 clips, 3.0 clips/s, ETA 0s"
        );
        // Never panics on odd input.
        for f in [f64::NAN, f64::INFINITY, -1.0, 1e-300, 7.0] {
            let _ = format_progress(u64::MAX, Some(f), "x", Duration::from_nanos(1));
            let _ = format_progress(1, Some(f), "x", Duration::MAX);
        }
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(format_duration(Duration::from_secs(45)), "45s");
        assert_eq!(format_duration(Duration::from_secs(185)), "3m05s");
        assert_eq!(format_duration(Duration::from_secs(7620)), "2h07m");
    }
}
