//! What identifies a model to the store ([`ModelIdentity`]), read without loading the
//! weights, and the digest of its weights file, remembered between starts.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::config::ClipConfig;
use super::{model_error, resolve_model_folder, EmbedError};

/// What identifies a model to the store: opening an index with another model is refused.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModelIdentity {
    /// The configured path or hub id, as given.
    pub id: String,
    /// Embedding dimension.
    pub dim: usize,
    /// SHA-256 of the weights file (`model.safetensors`, or `pytorch_model.bin`).
    pub digest: String,
}

impl ModelIdentity {
    /// Reads the identity of the model `spec` names: its dimension from `config.json` and
    /// the digest of its weights file, without loading the weights.
    ///
    /// With `digest_cache` (a file the caller owns, such as one in the daemon's state
    /// folder), the digest is taken from there while the weights file's device, inode,
    /// size, modification and change times are the ones it was computed for; any write to
    /// the file changes its change time (which no user can set), so a changed file is
    /// always read again. A cache that cannot be read or written only costs the reading.
    pub fn read(spec: &str, digest_cache: Option<&Path>) -> Result<Self, EmbedError> {
        let folder = resolve_model_folder(spec)?;
        let config = std::fs::read_to_string(folder.join("config.json"))
            .map_err(|e| model_error(spec, format!("cannot read config.json: {e}")))?;
        let config = ClipConfig::from_json(&config)
            .map_err(|e| model_error(spec, format!("config.json: {e}")))?;
        let (weights, name) = weights_file(&folder);
        let digest = match digest_cache {
            Some(cache) => cached_digest(&weights, cache),
            None => file_digest(&weights),
        }
        .map_err(|e| model_error(spec, format!("cannot read {name}: {e}")))?;
        Ok(Self {
            id: spec.to_string(),
            dim: config.projection_dim,
            digest,
        })
    }
}

/// The weights file of a model folder and its name: `model.safetensors`, or for older
/// uploads the PyTorch pickle `pytorch_model.bin`.
pub(super) fn weights_file(folder: &Path) -> (PathBuf, &'static str) {
    let safetensors = folder.join("model.safetensors");
    let pickle = folder.join("pytorch_model.bin");
    if !safetensors.is_file() && pickle.is_file() {
        (pickle, "pytorch_model.bin")
    } else {
        (safetensors, "model.safetensors")
    }
}

fn file_digest(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The file a digest was computed for, as `stat` describes it.
#[derive(Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct FileStamp {
    path: PathBuf,
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl FileStamp {
    fn of(path: &Path) -> std::io::Result<Self> {
        let m = std::fs::metadata(path)?;
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Ok(Self {
            path: std::fs::canonicalize(path)?,
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime_ns: ns(m.mtime(), m.mtime_nsec()),
            ctime_ns: ns(m.ctime(), m.ctime_nsec()),
        })
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct CachedDigest {
    file: FileStamp,
    digest: String,
}

fn cached_digest(weights: &Path, cache: &Path) -> std::io::Result<String> {
    let before = FileStamp::of(weights)?;
    let remembered = std::fs::read(cache)
        .ok()
        .and_then(|b| serde_json::from_slice::<CachedDigest>(&b).ok());
    if let Some(c) = remembered.filter(|c| c.file == before) {
        return Ok(c.digest);
    }
    let digest = file_digest(weights)?;
    // Remembered only when the file did not change while it was read.
    if FileStamp::of(weights)? == before {
        let entry = CachedDigest {
            file: before,
            digest: digest.clone(),
        };
        if let Err(e) = write_atomically(cache, &entry) {
            tracing::debug!(cache = %cache.display(), error = %e, "cannot remember the model digest");
        }
    }
    Ok(digest)
}

fn write_atomically(path: &Path, entry: &CachedDigest) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(entry)?)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_folder(dir: &Path, weights: &[u8]) -> String {
        std::fs::write(
            dir.join("config.json"),
            std::fs::read("assets/models/tiny-random-clip/config.json").unwrap(),
        )
        .unwrap();
        std::fs::write(dir.join("model.safetensors"), weights).unwrap();
        dir.display().to_string()
    }

    #[test]
    fn the_digest_is_remembered_until_the_weights_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m");
        std::fs::create_dir(&model).unwrap();
        let spec = model_folder(&model, b"first weights");
        let cache = dir.path().join("digest.json");
        let first = ModelIdentity::read(&spec, Some(&cache)).unwrap();
        assert_eq!(first, ModelIdentity::read(&spec, None).unwrap());
        assert!(cache.is_file());

        // A cache entry for this very file is used as it stands (proved by planting a
        // digest no file has).
        let mut entry: CachedDigest =
            serde_json::from_slice(&std::fs::read(&cache).unwrap()).unwrap();
        entry.digest = "planted".into();
        std::fs::write(&cache, serde_json::to_vec(&entry).unwrap()).unwrap();
        assert_eq!(
            ModelIdentity::read(&spec, Some(&cache)).unwrap().digest,
            "planted"
        );

        // Rewriting the file, even with the same length, makes it read again.
        std::fs::write(model.join("model.safetensors"), b"other weights").unwrap();
        let second = ModelIdentity::read(&spec, Some(&cache)).unwrap();
        assert_ne!(second.digest, "planted");
        assert_ne!(second.digest, first.digest);
        assert_eq!(second, ModelIdentity::read(&spec, None).unwrap());

        // A cache that is garbage is ignored and replaced.
        std::fs::write(&cache, b"{not json").unwrap();
        assert_eq!(ModelIdentity::read(&spec, Some(&cache)).unwrap(), second);
    }

    #[test]
    fn an_unwritable_cache_only_costs_the_reading() {
        let dir = tempfile::tempdir().unwrap();
        let spec = model_folder(dir.path(), b"weights");
        let cache = dir.path().join("no/such/folder/digest.json");
        let id = ModelIdentity::read(&spec, Some(&cache)).unwrap();
        assert_eq!(id, ModelIdentity::read(&spec, None).unwrap());
    }
}
