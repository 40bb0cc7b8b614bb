//! `frameseek embed --model M [--image FILE]… [--text T]…`: embeddings without a daemon.

use std::path::PathBuf;

use anyhow::Context;

use super::{Cli, EXIT_OK};
use crate::embed::{DeviceChoice, Embedder};

/// Arguments of `embed`.
#[derive(Debug, clap::Args)]
pub struct EmbedArgs {
    /// Model folder (Hugging Face CLIP layout) or hub id with a local copy (default:
    /// `model.path` from the configuration).
    #[arg(long)]
    pub model: Option<String>,
    /// Image files (PNG or JPEG) to embed.
    #[arg(long, value_name = "FILE")]
    pub image: Vec<PathBuf>,
    /// Texts to embed.
    #[arg(long, value_name = "TEXT")]
    pub text: Vec<String>,
    /// Device: auto, cpu or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Precision: auto (f16 on a GPU, f32 on the CPU), f32, f16, bf16 or int8 (CPU).
    #[arg(long, default_value = "auto")]
    pub dtype: String,
}

/// One input in command-line order.
enum Input<'a> {
    Image(&'a PathBuf),
    Text(&'a String),
}

pub fn run(cli: &Cli, args: &EmbedArgs) -> anyhow::Result<u8> {
    if args.image.is_empty() && args.text.is_empty() {
        anyhow::bail!("give at least one --image FILE or --text TEXT");
    }
    let device = DeviceChoice::parse(&args.device)
        .map_err(|e| anyhow::anyhow!("--device {}: {e}", args.device))?;
    let precision = crate::embed::Precision::parse(&args.dtype)
        .map_err(|e| anyhow::anyhow!("--dtype {}: {e}", args.dtype))?;
    let model = match &args.model {
        Some(m) => m.clone(),
        None => {
            crate::config::Config::load(cli.config.as_deref())
                .context("no --model given, and the configuration's model.path cannot be read")?
                .model
                .path
        }
    };
    let embedder = Embedder::load_with(&model, device, precision)?;
    for input in ordered_inputs(args) {
        let (kind, name, vector) = match input {
            Input::Image(path) => {
                let bytes = std::fs::read(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let v = embedder
                    .embed_image_bytes(&bytes)
                    .with_context(|| format!("{}", path.display()))?;
                ("image", path.display().to_string(), v)
            }
            Input::Text(text) => (
                "text",
                text.clone(),
                embedder.embed_texts(&[text])?.remove(0),
            ),
        };
        if cli.json {
            println!(
                "{}",
                serde_json::json!({"kind": kind, "input": name, "vector": vector})
            );
        } else {
            let head: Vec<String> = vector.iter().take(6).map(|x| format!("{x:+.4}")).collect();
            println!(
                "{kind:<5}  {}-d  [{}, …]  {name}",
                vector.len(),
                head.join(", ")
            );
        }
    }
    Ok(EXIT_OK)
}

/// Images and texts in the order they appeared on the command line.
fn ordered_inputs(args: &EmbedArgs) -> Vec<Input<'_>> {
    let raw: Vec<String> = std::env::args().collect();
    let mut images = args.image.iter();
    let mut texts = args.text.iter();
    let mut out = Vec::new();
    for a in &raw {
        if a == "--image" || a.starts_with("--image=") {
            out.extend(images.next().map(Input::Image));
        } else if a == "--text" || a.starts_with("--text=") {
            out.extend(texts.next().map(Input::Text));
        }
    }
    out.extend(images.map(Input::Image));
    out.extend(texts.map(Input::Text));
    out
}
