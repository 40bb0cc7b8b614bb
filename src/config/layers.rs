//! Where each setting comes from: the layers of the configuration taken apart again, for
//! `frameseek config` and `frameseek doctor`, and the check for secrets in files that every
//! user may read.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{Config, ConfigError, DEFAULT_CONFIG_TOML};

/// One configuration layer, lowest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layer {
    /// The compiled-in defaults (`config/frameseek.toml`).
    Default,
    /// The system file (`/etc/frameseek/frameseek.toml`).
    SystemFile(PathBuf),
    /// The file given with `--config`.
    ExplicitFile(PathBuf),
    /// `FRAMESEEK__SECTION__KEY` environment variables.
    Environment,
    /// A command-line option (`--socket`).
    CommandLine,
}

impl std::fmt::Display for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Layer::Default => f.write_str("default"),
            Layer::SystemFile(p) => write!(f, "system file {}", p.display()),
            Layer::ExplicitFile(p) => write!(f, "--config {}", p.display()),
            Layer::Environment => f.write_str("environment"),
            Layer::CommandLine => f.write_str("command line"),
        }
    }
}

/// One merged setting: its dotted key, its value (secrets redacted) and the layer it came
/// from.
#[derive(Debug, Clone, PartialEq)]
pub struct ExplainedSetting {
    /// The dotted key, e.g. `daemon.socket` or `cameras[0].url`.
    pub key: String,
    /// The value in force, with camera URLs redacted.
    pub value: Value,
    /// The highest layer that sets it.
    pub layer: Layer,
}

/// The merged configuration, setting by setting, each with the layer it came from. The
/// layers are those of [`Config::load_with`]; `socket` is the command line's `--socket`.
pub fn explain(
    file: Option<&Path>,
    system_file: Option<&Path>,
    use_env: bool,
    socket: Option<&Path>,
) -> Result<Vec<ExplainedSetting>, ConfigError> {
    use config::{File, FileFormat};
    // The values in force are what the daemon uses: load them the same way (and validate).
    Config::load_with(file, system_file, use_env)?;
    fn build<S: config::Source + Send + Sync + 'static>(
        source: S,
    ) -> Result<config::Config, config::ConfigError> {
        config::Config::builder().add_source(source).build()
    }
    let mut layers = vec![(
        Layer::Default,
        build(File::from_str(DEFAULT_CONFIG_TOML, FileFormat::Toml))?,
    )];
    // As in `Config::load_with`, a system file this user cannot read is left out.
    if let Some(system) = system_file.filter(|p| std::fs::File::open(p).is_ok()) {
        layers.push((
            Layer::SystemFile(system.to_path_buf()),
            build(File::from(system).format(FileFormat::Toml))?,
        ));
    }
    if let Some(file) = file {
        layers.push((
            Layer::ExplicitFile(file.to_path_buf()),
            build(File::from(file).format(FileFormat::Toml))?,
        ));
    }
    if use_env {
        layers.push((Layer::Environment, build(super::environment())?));
    }
    let merged: Value = layers
        .iter()
        .fold(config::Config::builder(), |b, (_, layer)| {
            b.add_source(layer.clone())
        })
        .build()?
        .try_deserialize()?;
    let mut flat = Vec::new();
    flatten("", &merged, &mut flat);
    let layer_keys: Vec<(Layer, Vec<String>)> = layers
        .into_iter()
        .map(|(layer, c)| {
            let v: Value = c.try_deserialize().unwrap_or(Value::Null);
            let mut keys = Vec::new();
            flatten("", &v, &mut keys);
            (layer, keys.into_iter().map(|(k, _)| k).collect())
        })
        .collect();
    Ok(flat
        .into_iter()
        .map(|(key, value)| {
            let layer = if socket.is_some() && key == "daemon.socket" {
                Layer::CommandLine
            } else {
                layer_keys
                    .iter()
                    .rev()
                    .find(|(_, keys)| keys.contains(&key))
                    .map_or(Layer::Default, |(l, _)| l.clone())
            };
            let value = match (&value, socket) {
                (_, Some(s)) if key == "daemon.socket" => Value::String(s.display().to_string()),
                (Value::String(s), _) if is_url_key(&key) => {
                    Value::String(crate::source::redact(s))
                }
                _ => value,
            };
            ExplainedSetting { key, value, layer }
        })
        .collect())
}

/// True for keys whose values may carry a password: camera URLs and client stream
/// prefixes.
fn is_url_key(key: &str) -> bool {
    key.ends_with(".url") || key.starts_with("ingest.client_streams")
}

/// Flattens a JSON tree into dotted keys (`a.b`, `list[0].c`); an empty list or table is
/// one key.
fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::Array(items) if items.iter().any(Value::is_object) => {
            for (i, v) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), v, out);
            }
        }
        Value::Array(items) => out.push((
            prefix.to_string(),
            Value::Array(
                items
                    .iter()
                    .map(|v| match v {
                        Value::String(s) if is_url_key(prefix) => {
                            Value::String(crate::source::redact(s))
                        }
                        v => v.clone(),
                    })
                    .collect(),
            ),
        )),
        v => out.push((prefix.to_string(), v.clone())),
    }
}

/// A configuration file that every user may read and that holds a camera `url` with a
/// password: the file, and the camera's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExposedSecret {
    /// The world-readable file.
    pub file: PathBuf,
    /// The camera whose inline URL carries a password.
    pub camera: String,
}

/// The cameras whose inline `url` holds a password in a file of `files` that is readable by
/// every user (mode `o+r`). Files that do not exist or do not parse are skipped (loading
/// reports those).
pub fn world_readable_secrets(files: &[&Path]) -> Vec<ExposedSecret> {
    let mut found = Vec::new();
    for file in files {
        let Ok(meta) = std::fs::metadata(file) else {
            continue;
        };
        if meta.permissions().mode() & 0o004 == 0 {
            continue;
        }
        let cameras: Vec<super::CameraConfig> = config::Config::builder()
            .add_source(config::File::from(*file).format(config::FileFormat::Toml))
            .build()
            .and_then(|c| c.get("cameras"))
            .unwrap_or_default();
        for c in cameras {
            if crate::source::has_secret(&c.url) {
                found.push(ExposedSecret {
                    file: file.to_path_buf(),
                    camera: c.name,
                });
            }
        }
    }
    found
}

/// The cameras whose `url_file` every user may read while the URL it holds (already read
/// into `url`, see [`Config::resolve_camera_urls`]) carries a password.
pub fn world_readable_url_files(cameras: &[super::CameraConfig]) -> Vec<ExposedSecret> {
    cameras
        .iter()
        .filter(|c| crate::source::has_secret(&c.url))
        .filter_map(|c| {
            let file = c.url_file.as_ref()?;
            let mode = std::fs::metadata(file).ok()?.permissions().mode();
            (mode & 0o004 != 0).then(|| ExposedSecret {
                file: file.clone(),
                camera: c.name.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_setting_names_its_layer_and_urls_are_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let system = dir.path().join("system.toml");
        std::fs::write(&system, "[model]\nbatch_size = 4\n").unwrap();
        let file = dir.path().join("f.toml");
        std::fs::write(
            &file,
            "[model]\nbatch_size = 8\n[[cameras]]\nname = \"gate\"\nurl = \"rtsp://u:hunter2@10.0.0.2/s\"\n",
        )
        .unwrap();
        let all = explain(
            Some(&file),
            Some(&system),
            false,
            Some(Path::new("/x.sock")),
        )
        .unwrap();
        let get = |k: &str| all.iter().find(|s| s.key == k).unwrap().clone();
        assert_eq!(
            get("model.batch_size").layer,
            Layer::ExplicitFile(file.clone())
        );
        assert_eq!(get("model.batch_size").value, Value::from(8));
        assert_eq!(get("model.device").layer, Layer::Default);
        assert_eq!(get("daemon.socket").layer, Layer::CommandLine);
        assert_eq!(get("daemon.socket").value, Value::from("/x.sock"));
        let url = get("cameras[0].url");
        assert_eq!(url.value, Value::from("rtsp://u:***@10.0.0.2/s"));
        assert_eq!(url.layer, Layer::ExplicitFile(file.clone()));
        assert!(!format!("{all:?}").contains("hunter2"));
        let no_file = explain(None, Some(&system), false, None).unwrap();
        let batch = no_file
            .iter()
            .find(|s| s.key == "model.batch_size")
            .unwrap();
        assert_eq!(batch.layer, Layer::SystemFile(system.clone()));
    }

    #[test]
    fn passwords_in_world_readable_files_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f.toml");
        std::fs::write(
            &file,
            "[[cameras]]\nname = \"gate\"\nurl = \"rtsp://u:pw@h/s\"\n[[cameras]]\nname = \"lobby\"\nurl = \"rtsp://h/s\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            world_readable_secrets(&[&file]),
            vec![ExposedSecret {
                file: file.clone(),
                camera: "gate".into()
            }]
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(world_readable_secrets(&[&file]).is_empty());
        let url_file = dir.path().join("gate.url");
        std::fs::write(&url_file, "rtsp://u:pw@h/s\n").unwrap();
        std::fs::set_permissions(&url_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let toml = format!(
            "[[cameras]]\nname = \"gate\"\nurl_file = {:?}\n",
            url_file.display().to_string()
        );
        let mut c = Config::from_toml_str(&toml).unwrap();
        c.resolve_camera_urls().unwrap();
        assert_eq!(world_readable_url_files(&c.cameras).len(), 1);
        std::fs::set_permissions(&url_file, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(world_readable_url_files(&c.cameras).is_empty());
    }

    #[test]
    fn a_camera_url_has_exactly_one_origin_and_its_file_must_be_readable() {
        let both = Config::from_toml_str(
            "[[cameras]]\nname = \"a\"\nurl = \"rtsp://h/s\"\nurl_file = \"/x\"\n",
        )
        .unwrap_err();
        assert!(both.to_string().contains("cameras[0].url"), "{both}");
        assert!(both.to_string().contains("exactly one"), "{both}");
        let none = Config::from_toml_str("[[cameras]]\nname = \"a\"\n").unwrap_err();
        assert!(none.to_string().contains("exactly one"), "{none}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.url");
        let toml = format!(
            "[[cameras]]\nname = \"a\"\nurl_file = {:?}\n",
            file.display().to_string()
        );
        let mut c = Config::from_toml_str(&toml).unwrap();
        let missing = c.clone().resolve_camera_urls().unwrap_err().to_string();
        assert!(
            missing.contains("cameras[0].url_file") && missing.contains("a.url"),
            "{missing}"
        );
        std::fs::write(&file, "\n").unwrap();
        let empty = c.clone().resolve_camera_urls().unwrap_err().to_string();
        assert!(empty.contains("is empty"), "{empty}");
        std::fs::write(&file, "relative/path\n").unwrap();
        let bad = c.clone().resolve_camera_urls().unwrap_err().to_string();
        assert!(
            bad.contains("cameras[0].url") && bad.contains("absolute path"),
            "{bad}"
        );
        std::fs::write(&file, " rtsp://u:pw@h/s \n").unwrap();
        c.resolve_camera_urls().unwrap();
        assert_eq!(c.cameras[0].url, "rtsp://u:pw@h/s");
        let bad_url = Config::from_toml_str("[[cameras]]\nname = \"a\"\nurl = \"ftp://u:pw@h/\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            !bad_url.contains("pw@") && bad_url.contains("u:***@"),
            "{bad_url}"
        );
    }
}
