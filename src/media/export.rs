//! `export`: a range of a source written into the export folder as a clip (stream copy)
//! and a JPEG of its best frame, each written under a temporary name and renamed, readable
//! only by the daemon's user and group.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{frame_jpeg, remux_range, MediaError};

/// Container extensions an export keeps; other sources are exported as Matroska.
const EXPORT_EXTENSIONS: &[&str] = &["mp4", "m4v", "mov", "mkv", "webm", "ts", "avi"];

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading the source or writing the clip failed.
    #[error(transparent)]
    Media(#[from] MediaError),
    /// The export folder cannot be created.
    #[error("cannot create export folder {path} ({source}); check daemon.export_dir")]
    Folder {
        /// The folder.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A file cannot be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    /// The clip file.
    pub clip: PathBuf,
    /// The JPEG of the best frame.
    pub thumbnail: PathBuf,
    /// The requested end, capped at the file's duration, ms.
    pub requested_end_ms: u64,
    /// Offset of the first frame written (the keyframe at or before the start), ms.
    pub start_ms: u64,
    /// End of the last frame written, ms.
    pub end_ms: u64,
    /// Offset of the frame in the thumbnail, ms.
    pub best_ms: u64,
    /// The video codec (unchanged from the source).
    pub codec: String,
    /// Size of the clip file.
    pub bytes: u64,
}

/// Writes `start_ms..end_ms` of `file` (source id `source`) and a JPEG of the frame at
/// `best_ms` into `dir` (created with mode 0750 when missing). Nothing partial is left
/// behind on failure.
pub fn export_range(
    file: &Path,
    source: &str,
    (start_ms, end_ms): (u64, u64),
    best_ms: u64,
    dir: &Path,
) -> Result<Exported, ExportError> {
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(dir)
            .map_err(|source| ExportError::Folder {
                path: dir.display().to_string(),
                source,
            })?;
    }
    let (stem, ext) = export_name(source, start_ms, end_ms);
    let clip = dir.join(format!("{stem}.{ext}"));
    // Unique per export in flight, so two exports of one range do not write one file.
    static PARTIAL: AtomicU64 = AtomicU64::new(0);
    let n = PARTIAL.fetch_add(1, Ordering::Relaxed);
    let partial = dir.join(format!(".{stem}.{n}.partial.{ext}"));
    let thumb = dir.join(format!("{stem}.jpg"));
    let written = remux_range(file, &partial, start_ms, end_ms).inspect_err(|_| {
        let _ = std::fs::remove_file(&partial);
    })?;
    let frame = frame_jpeg(file, best_ms, None).inspect_err(|_| {
        let _ = std::fs::remove_file(&partial);
    })?;
    let write = |path: &Path, result: std::io::Result<()>| {
        result.map_err(|source| ExportError::Write {
            path: path.display().to_string(),
            source,
        })
    };
    let thumb_partial = dir.join(format!(".{stem}.{n}.partial.jpg"));
    write(
        &thumb,
        std::fs::write(&thumb_partial, &frame.jpeg)
            .and_then(|()| set_private(&thumb_partial))
            .and_then(|()| std::fs::rename(&thumb_partial, &thumb)),
    )
    .inspect_err(|_| {
        let _ = std::fs::remove_file(&thumb_partial);
        let _ = std::fs::remove_file(&partial);
    })?;
    write(
        &clip,
        set_private(&partial).and_then(|()| std::fs::rename(&partial, &clip)),
    )
    .inspect_err(|_| {
        let _ = std::fs::remove_file(&partial);
    })?;
    let bytes = std::fs::metadata(&clip).map(|m| m.len()).unwrap_or(0);
    tracing::info!(source, clip = %clip.display(), start_ms = written.start_ms, end_ms = written.end_ms, "exported");
    Ok(Exported {
        clip,
        thumbnail: thumb,
        requested_end_ms: written.requested_end_ms,
        start_ms: written.start_ms,
        end_ms: written.end_ms,
        best_ms: frame.at_ms,
        codec: written.codec,
        bytes,
    })
}

/// The file name (without extension) and extension of an export: the source's file stem,
/// a short hash of its full path (two cameras may both write `footage.mp4`) and the range.
fn export_name(source: &str, start_ms: u64, end_ms: u64) -> (String, String) {
    use sha2::Digest;
    let path = Path::new(source);
    let stem: String = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    let hash = sha2::Sha256::digest(source.as_bytes());
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .filter(|e| EXPORT_EXTENSIONS.contains(&e.as_str()))
        .unwrap_or_else(|| "mkv".into());
    (
        format!(
            "{stem}-{:02x}{:02x}{:02x}{:02x}-{start_ms}-{end_ms}",
            hash[0], hash[1], hash[2], hash[3]
        ),
        ext,
    )
}

/// Gives a file written by the daemon mode 0640 (owner and the daemon's group).
fn set_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o640))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_names_keep_the_container_and_tell_same_named_files_apart() {
        let (a, ext) = export_name("/srv/cam1/footage.mp4", 1000, 5000);
        let (b, _) = export_name("/srv/cam2/footage.mp4", 1000, 5000);
        assert_eq!(ext, "mp4");
        assert!(
            a.starts_with("footage-") && a.ends_with("-1000-5000"),
            "{a}"
        );
        assert_ne!(a, b);
        assert_eq!(export_name("/srv/x/rec.DAV", 0, 1).1, "mkv");
        assert!(export_name("/srv/a b;c.mkv", 0, 1).0.starts_with("a_b_c-"));
    }
}
