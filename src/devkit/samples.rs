//! Sample footage for the tests, rendered with the `ffmpeg` command from
//! FFmpeg's built-in test sources: each video is a run of distinct scenes with known times.

use std::path::Path;
use std::process::Command;

/// One scene of a generated video.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    /// Name of the scene (the lavfi source it was rendered from).
    pub name: String,
    /// Offset where it starts, seconds.
    pub start: f64,
    /// Offset where it ends, seconds.
    pub end: f64,
}

/// Renders an H.264 MP4 at 29.97 fps, 640x360, made of `sources` (lavfi source names such
/// as `testsrc2`), each `scene_seconds` long. Returns the scenes with their times.
pub fn render_scene_video(
    path: &Path,
    sources: &[&str],
    scene_seconds: f64,
) -> std::io::Result<Vec<Scene>> {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-y"]);
    for s in sources {
        let spec = match *s {
            "color" => "color=c=darkgreen:s=640x360:r=30000/1001".to_string(),
            other => format!("{other}=s=640x360:r=30000/1001"),
        };
        cmd.args([
            "-f",
            "lavfi",
            "-t",
            &format!("{scene_seconds}"),
            "-i",
            &spec,
        ]);
    }
    let inputs: String = (0..sources.len()).map(|i| format!("[{i}:v]")).collect();
    cmd.args([
        "-filter_complex",
        &format!(
            "{inputs}concat=n={}:v=1:a=0,format=yuv420p[v]",
            sources.len()
        ),
    ]);
    cmd.args([
        "-map", "[v]", "-c:v", "libx264", "-preset", "veryfast", "-g", "60",
    ]);
    cmd.arg(path);
    let out = cmd.output().map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot run ffmpeg (install it: apt-get install ffmpeg): {e}"),
        )
    })?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "ffmpeg failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(sources
        .iter()
        .enumerate()
        .map(|(i, s)| Scene {
            name: s.to_string(),
            start: i as f64 * scene_seconds,
            end: (i + 1) as f64 * scene_seconds,
        })
        .collect())
}

/// Extracts the frame at `seconds` of `video` as a PNG (what a user would screenshot).
pub fn extract_frame(video: &Path, seconds: f64, png: &Path) -> std::io::Result<()> {
    let out = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-ss",
            &format!("{seconds}"),
            "-i",
        ])
        .arg(video)
        .args(["-frames:v", "1"])
        .arg(png)
        .output()?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "ffmpeg failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}
