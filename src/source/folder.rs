//! Folders of footage: which files in a folder are video, walked recursively.

use std::path::{Path, PathBuf};

/// File extensions picked up when a folder is ingested or watched.
pub const VIDEO_EXTENSIONS: &[&str] = &[
    "mp4", "m4v", "mov", "mkv", "webm", "avi", "ts", "mts", "m2ts", "mpg", "mpeg", "flv", "wmv",
    "3gp", "ogv", "dav", "h264", "h265", "hevc", "mjpeg", "y4m",
];

/// Video files under `dir`, recursively, sorted; hidden entries are skipped.
pub fn walk_videos(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(t) if t.is_file() => {
                    let ext = path
                        .extension()
                        .map(|x| x.to_string_lossy().to_lowercase())
                        .unwrap_or_default();
                    if VIDEO_EXTENSIONS.contains(&ext.as_str()) {
                        out.push(path);
                    }
                }
                _ => {}
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_walked_for_videos_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("cam1/2026")).unwrap();
        std::fs::create_dir_all(dir.path().join(".hidden")).unwrap();
        for f in [
            "cam1/a.MP4",
            "cam1/2026/b.mkv",
            "cam1/notes.txt",
            ".hidden/c.mp4",
            "d.ts",
        ] {
            std::fs::write(dir.path().join(f), b"x").unwrap();
        }
        let found: Vec<String> = walk_videos(dir.path())
            .iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(found, vec!["cam1/2026/b.mkv", "cam1/a.MP4", "d.ts"]);
    }
}
