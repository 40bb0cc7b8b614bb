//! `frameseek config`: the merged configuration, each value with the layer it came from
//! (default, system file, `--config` file, environment, command line), secrets redacted.

use serde_json::{json, Value};

use super::{print_table, Cli, EXIT_OK};
use crate::config::{explain, Layer, SYSTEM_CONFIG_PATH};

/// Runs `config`.
pub fn run(cli: &Cli) -> anyhow::Result<u8> {
    let settings = explain(
        cli.config.as_deref(),
        Some(std::path::Path::new(SYSTEM_CONFIG_PATH)),
        true,
        cli.socket.as_deref(),
    )?;
    if cli.json {
        let list: Vec<Value> = settings
            .iter()
            .map(|s| json!({"key": s.key, "value": s.value, "layer": layer_name(&s.layer), "file": layer_file(&s.layer)}))
            .collect();
        println!("{}", json!({ "settings": list }));
    } else {
        let rows: Vec<Vec<String>> = settings
            .iter()
            .map(|s| {
                let value = match &s.value {
                    Value::String(text) => text.clone(),
                    v => v.to_string(),
                };
                vec![s.key.clone(), value, s.layer.to_string()]
            })
            .collect();
        print_table(&["KEY", "VALUE", "FROM"], &rows);
    }
    Ok(EXIT_OK)
}

/// The layer's kind as JSON names it: `default`, `system`, `file`, `environment`,
/// `command_line`.
fn layer_name(layer: &Layer) -> &'static str {
    match layer {
        Layer::Default => "default",
        Layer::SystemFile(_) => "system",
        Layer::ExplicitFile(_) => "file",
        Layer::Environment => "environment",
        Layer::CommandLine => "command_line",
    }
}

fn layer_file(layer: &Layer) -> Option<String> {
    match layer {
        Layer::SystemFile(p) | Layer::ExplicitFile(p) => Some(p.display().to_string()),
        _ => None,
    }
}
