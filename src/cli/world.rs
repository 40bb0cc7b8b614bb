//! `frameseek world`: the command over the synthetic test world of [`crate::devkit::world`].
//! `dataset` writes rendered training images with captions; `footage` renders sample camera
//! videos with ground truth and a labelled query file for `frameseek eval`; `wide-footage`
//! renders 16:9 camera videos with objects at the edges, small and in the middle, and their
//! grouped queries; `stills` renders random scenes as PNGs.

use std::path::PathBuf;

use anyhow::Context;

use super::{Cli, EXIT_OK};
use crate::devkit::world;

/// Arguments of `world`.
#[derive(Debug, clap::Args)]
pub struct WorldArgs {
    /// What to generate.
    #[command(subcommand)]
    pub command: WorldCommand,
}

/// The `world` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum WorldCommand {
    /// Write a training set: images.u8 (N x SIZE x SIZE x 3 RGB), captions.jsonl, meta.json.
    Dataset {
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Number of images.
        #[arg(long, default_value_t = 20_000)]
        count: usize,
        /// Random seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Side of the square model input, pixels.
        #[arg(long, default_value_t = 64)]
        size: usize,
    },
    /// Render sample camera videos with ground_truth.jsonl and queries.jsonl.
    Footage {
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Random seed of the rendering (lighting, placement, noise).
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Render the 16:9 cameras (objects at the edges, small, in the middle, partly hidden,
    /// two at once, among distractors) with queries.jsonl (each object searched within its
    /// own video) and queries-all.jsonl (across every video), which `frameseek eval` reports
    /// per group: edge, small, middle, seen, held-out, hidden, together.
    WideFootage {
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Random seed of the rendering (lighting, colours, noise).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Frame width, pixels (16:9 with the height).
        #[arg(long, default_value_t = 1280)]
        width: usize,
        /// Frame height, pixels.
        #[arg(long, default_value_t = 720)]
        height: usize,
    },
    /// Render random scenes as PNGs, to look at the world.
    Stills {
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Number of images.
        #[arg(long, default_value_t = 8)]
        count: usize,
        /// Random seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Render 16:9 scenes (1280x720) instead of 4:3 ones.
        #[arg(long)]
        wide: bool,
    },
}

/// Runs `world`.
pub fn run(cli: &Cli, args: &WorldArgs) -> anyhow::Result<u8> {
    match &args.command {
        WorldCommand::Dataset {
            out,
            count,
            seed,
            size,
        } => {
            world::write_dataset(out, *count, *seed, *size)?;
            println!(
                "wrote {count} training images of {size}x{size} to {}",
                out.display()
            );
        }
        WorldCommand::Footage { out, seed } => {
            let footage = world::render_footage(out, *seed)?;
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "dir": footage.dir,
                        "videos": footage.videos,
                        "events": footage.ground_truth.len(),
                        "queries": footage.queries.len(),
                    })
                );
            } else {
                for v in &footage.videos {
                    println!("video: {}", v.display());
                }
                println!(
                    "ground truth: {} ({} events)",
                    out.join("ground_truth.jsonl").display(),
                    footage.ground_truth.len()
                );
                println!(
                    "labelled queries: {} ({} queries)",
                    out.join("queries.jsonl").display(),
                    footage.queries.len()
                );
            }
        }
        WorldCommand::WideFootage {
            out,
            seed,
            width,
            height,
        } => {
            let footage = world::render_wide_footage(out, *seed, *width, *height)?;
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "dir": out,
                        "videos": footage.videos,
                        "queries": footage.queries.len(),
                    })
                );
            } else {
                for v in &footage.videos {
                    println!("video: {}", v.display());
                }
                println!(
                    "labelled queries: {} (each within its own video) and {} (across every video); {} queries each, which frameseek eval reports per group",
                    out.join(world::WIDE_QUERIES_OWN).display(),
                    out.join(world::WIDE_QUERIES_ALL).display(),
                    footage.queries.len()
                );
            }
        }
        WorldCommand::Stills {
            out,
            count,
            seed,
            wide: true,
        } => {
            std::fs::create_dir_all(out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let mut rng = world::WorldRng::new(*seed);
            let (w, h) = (1280, 720);
            for i in 0..*count {
                let scene = world::WideScene::random(&mut rng);
                let look = world::RenderJitter::random(&mut rng, 0);
                let path = out.join(format!("wide-{i:03}.png"));
                world::save_png(&path, &scene.render(&look, w, h), w, h)?;
                let whole = scene.view_caption((0.0, -280.0, 1280.0, 1000.0), w, h);
                let caption = whole
                    .map(|s| s.caption())
                    .unwrap_or_else(|| "(unclear)".into());
                println!("{}: {caption}", path.display());
            }
        }
        WorldCommand::Stills {
            out, count, seed, ..
        } => {
            std::fs::create_dir_all(out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let mut rng = world::WorldRng::new(*seed);
            for i in 0..*count {
                let scene = world::SceneSpec::random(&mut rng);
                let jitter = world::RenderJitter::random(&mut rng, scene.objects.len());
                let rgb =
                    world::render_scene(&scene, &jitter, world::FRAME_WIDTH, world::FRAME_HEIGHT);
                let path = out.join(format!("scene-{i:03}.png"));
                world::save_png(&path, &rgb, world::FRAME_WIDTH, world::FRAME_HEIGHT)?;
                println!("{}: {}", path.display(), scene.caption());
            }
        }
    }
    Ok(EXIT_OK)
}
