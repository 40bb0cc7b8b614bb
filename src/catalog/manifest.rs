//! `state_dir/manifest.json`, written atomically at each checkpoint beside the database.

use std::path::Path;

use super::CatalogError;

/// `state_dir/manifest.json`: what the last checkpoint committed, kept outside sled so a
/// damaged or rolled-back database is noticed instead of silently starting empty.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) struct Manifest {
    /// Frames in the database at the last checkpoint.
    pub(super) frames: u64,
    /// True while frames are being removed (a lower count after a crash is then expected).
    pub(super) removing: bool,
}

pub(super) fn read_manifest(path: &Path) -> Option<Manifest> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

pub(super) fn write_manifest(path: &Path, manifest: Manifest) -> Result<(), CatalogError> {
    let err = |source| CatalogError::Manifest {
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension("json.tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec(&manifest).expect("manifest serialises"),
    )
    .map_err(err)?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|f| f.sync_all())
            .map_err(err)?;
    }
    Ok(())
}
