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
    /// The export folder or its disk has no room under the configured limits.
    #[error("{0}; remove old exports from the export folder (or raise daemon.export_max_mb / lower daemon.export_reserve_mb)")]
    Full(String),
    /// A file cannot be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// How much the export folder may hold (`daemon.export_max_mb`, `daemon.export_reserve_mb`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExportLimits {
    /// Most bytes the folder may hold; `None`: no cap.
    pub max_bytes: Option<u64>,
    /// Bytes that must stay free on the folder's file system after an export.
    pub reserve_bytes: u64,
}

impl ExportLimits {
    /// Refuses when the folder, holding `adding` more bytes than now, would pass the cap
    /// (with `adding == 0`: is at it already), or its disk would keep less than the reserve.
    fn check(&self, dir: &Path, adding: u64) -> Result<(), ExportError> {
        if let Some(max) = self.max_bytes {
            let used = folder_bytes(dir) + adding;
            if used > max || (adding == 0 && used >= max) {
                return Err(ExportError::Full(format!(
                    "the export folder {} would hold {} MB, over daemon.export_max_mb ({} MB)",
                    dir.display(),
                    used / 1_000_000,
                    max / 1_000_000
                )));
            }
        }
        if let Some(free) = crate::store::disk::free_bytes(dir) {
            let left = free.saturating_sub(adding);
            if left < self.reserve_bytes {
                return Err(ExportError::Full(format!(
                    "the disk of the export folder {} would keep {} MB free, under daemon.export_reserve_mb ({} MB)",
                    dir.display(),
                    left / 1_000_000,
                    self.reserve_bytes / 1_000_000
                )));
            }
        }
        Ok(())
    }
}

/// Bytes of the regular files in `dir` (exports are written flat into it).
fn folder_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
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
/// `best_ms` (with a box around `outline`, when given) into `dir` (created with mode 0750 when missing). Nothing partial is left
/// behind on failure. `limits` are checked before anything is written (the folder is not
/// already full) and again once the clip and thumbnail are known, before they are renamed
/// into place (a clip that would pass them is removed and refused).
pub fn export_range(
    file: &Path,
    source: &str,
    (start_ms, end_ms): (u64, u64),
    (best_ms, outline): (u64, Option<crate::embed::Region>),
    dir: &Path,
    limits: ExportLimits,
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
    limits.check(dir, 0)?;
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
    let frame = frame_jpeg(file, best_ms, None, outline).inspect_err(|_| {
        let _ = std::fs::remove_file(&partial);
    })?;
    // The clip is on disk already (as the partial file); the thumbnail is still in memory.
    limits
        .check(dir, frame.jpeg.len() as u64)
        .inspect_err(|_| {
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
    fn export_limits_refuse_a_full_folder_and_a_short_disk() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("old.mp4"), vec![0u8; 3000]).unwrap();
        let cap = |max| ExportLimits {
            max_bytes: Some(max),
            reserve_bytes: 0,
        };
        assert!(cap(10_000).check(dir.path(), 0).is_ok());
        assert!(cap(10_000).check(dir.path(), 5000).is_ok());
        assert!(matches!(
            cap(10_000).check(dir.path(), 8000),
            Err(ExportError::Full(_))
        ));
        assert!(cap(3000).check(dir.path(), 0).is_err());
        let e = ExportLimits {
            max_bytes: None,
            reserve_bytes: u64::MAX,
        }
        .check(dir.path(), 0)
        .unwrap_err();
        assert!(e.to_string().contains("daemon.export_reserve_mb"), "{e}");
    }

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
