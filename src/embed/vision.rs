//! CLIP's vision tower (`CLIPVisionTransformer` and `visual_projection`): patch and
//! position embeddings, the encoder, pooling at the class token.

use std::sync::{Mutex, OnceLock};

use candle_core::{Module, Result, Tensor};
use candle_nn::{layer_norm, LayerNorm, VarBuilder};

use super::config::VisionConfig;
use super::device::Precision;
use super::layers::{Encoder, Proj, TowerShape, WeightFormat};

/// The vision tower plus its projection.
#[derive(Debug, Clone)]
pub struct VisionTower {
    class_embedding: Tensor,
    /// The patch-embedding convolution as a matrix product over flattened patches.
    patch_embedding: Proj,
    patch_size: usize,
    position_embedding: Tensor,
    pre_ln: LayerNorm,
    encoder: Encoder,
    post_ln: LayerNorm,
    projection: Proj,
}

impl VisionTower {
    /// Loads the tower from `vb` (`vision_model`) and its projection from `projection_vb`
    /// (`visual_projection`), the linear layers in `precision` (`Int8`: per-channel int8
    /// weights and per-token int8 activations on the CPU, see `int8`).
    pub(super) fn new(
        vb: VarBuilder,
        cfg: &VisionConfig,
        projection_dim: usize,
        projection_vb: VarBuilder,
        precision: Precision,
    ) -> Result<Self> {
        let format = match precision {
            Precision::Int8 => WeightFormat::Int8Channels,
            _ => WeightFormat::Float,
        };
        let emb = vb.pp("embeddings");
        let patches = (cfg.image_size / cfg.patch_size).pow(2);
        let p = cfg.patch_size;
        let kernel = emb
            .pp("patch_embedding")
            .get((cfg.hidden_size, cfg.num_channels, p, p), "weight")?;
        let kernel = kernel.reshape((cfg.hidden_size, cfg.num_channels * p * p))?;
        let shape = TowerShape {
            layers: cfg.num_hidden_layers,
            hidden: cfg.hidden_size,
            inter: cfg.intermediate_size,
            heads: cfg.num_attention_heads,
            act: cfg.activation(),
            eps: cfg.layer_norm_eps,
        };
        Ok(Self {
            class_embedding: emb.get(cfg.hidden_size, "class_embedding")?,
            // The patch kernel stays float32 in every precision: it is a small share of
            // the work and sees raw pixels.
            patch_embedding: Proj::from_weight(kernel, None, WeightFormat::Float)?,
            patch_size: p,
            position_embedding: emb
                .pp("position_embedding")
                .get((patches + 1, cfg.hidden_size), "weight")?,
            pre_ln: layer_norm(cfg.hidden_size, cfg.layer_norm_eps, vb.pp("pre_layrnorm"))?,
            encoder: Encoder::new(vb.pp("encoder"), &shape, format)?,
            post_ln: layer_norm(cfg.hidden_size, cfg.layer_norm_eps, vb.pp("post_layernorm"))?,
            projection: Proj::load(
                projection_vb,
                cfg.hidden_size,
                projection_dim,
                false,
                format,
            )?,
        })
    }

    /// Projected (not normalised) features for pixels shaped `(batch, 3, size, size)`.
    pub fn forward(&self, pixels: &Tensor) -> Result<Tensor> {
        let (batch, channels, size, _) = pixels.dims4()?;
        let p = self.patch_size;
        let g = size / p;
        // (b, c, gy, p, gx, p) -> (b, gy, gx, c, p, p): one row per patch, in the
        // convolution kernel's (c, ky, kx) order.
        let rows = pixels
            .reshape((batch, channels, g, p, g, p))?
            .permute((0, 2, 4, 1, 3, 5))?
            .contiguous()?
            .reshape((batch, g * g, channels * p * p))?;
        let patches = self.patch_embedding.forward(&rows)?;
        let hidden = self.class_embedding.dim(0)?;
        let class = self
            .class_embedding
            .reshape((1, 1, hidden))?
            .broadcast_as((batch, 1, hidden))?;
        let xs = Tensor::cat(&[&class, &patches], 1)?.broadcast_add(&self.position_embedding)?;
        let xs = self.pre_ln.forward(&xs)?;
        let xs = self.encoder.forward(&xs, None)?;
        let pooled = self.post_ln.forward(&xs.narrow(1, 0, 1)?.squeeze(1)?)?;
        self.projection.forward(&pooled)
    }
}

/// The names and shapes of the weights [`VisionTower::new`] reads, with their checkpoint
/// prefixes (`vision_model.`, `visual_projection.`): what a checkpoint must hold for the
/// tower to load, checked before the tower itself is built (see [`LazyVision`]).
pub(super) fn expected_weights(
    cfg: &VisionConfig,
    projection_dim: usize,
) -> Vec<(String, Vec<usize>)> {
    let h = cfg.hidden_size;
    let p = cfg.patch_size;
    let patches = (cfg.image_size / p).pow(2);
    let mut out = vec![
        (
            "vision_model.embeddings.class_embedding".to_string(),
            vec![h],
        ),
        (
            "vision_model.embeddings.patch_embedding.weight".into(),
            vec![h, cfg.num_channels, p, p],
        ),
        (
            "vision_model.embeddings.position_embedding.weight".into(),
            vec![patches + 1, h],
        ),
        ("visual_projection.weight".into(), vec![projection_dim, h]),
    ];
    for ln in ["pre_layrnorm", "post_layernorm"] {
        for part in ["weight", "bias"] {
            out.push((format!("vision_model.{ln}.{part}"), vec![h]));
        }
    }
    for i in 0..cfg.num_hidden_layers {
        let layer = format!("vision_model.encoder.layers.{i}");
        for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] {
            out.push((format!("{layer}.self_attn.{proj}.weight"), vec![h, h]));
            out.push((format!("{layer}.self_attn.{proj}.bias"), vec![h]));
        }
        for ln in ["layer_norm1", "layer_norm2"] {
            for part in ["weight", "bias"] {
                out.push((format!("{layer}.{ln}.{part}"), vec![h]));
            }
        }
        let inter = cfg.intermediate_size;
        out.push((format!("{layer}.mlp.fc1.weight"), vec![inter, h]));
        out.push((format!("{layer}.mlp.fc1.bias"), vec![inter]));
        out.push((format!("{layer}.mlp.fc2.weight"), vec![h, inter]));
        out.push((format!("{layer}.mlp.fc2.bias"), vec![h]));
    }
    out
}

/// The vision tower, built the first time an image is embedded rather than when the model
/// loads: a daemon that only answers text queries never holds it (about 90 MB in int8 and
/// its float32 weights while quantising, for a ViT-B/32).
pub(super) struct LazyVision {
    tower: OnceLock<VisionTower>,
    /// Held while the tower is built, so that two first callers build it once.
    building: Mutex<()>,
    /// Builds the tower; `None` when it was built at load.
    build: Option<Box<VisionBuild>>,
}

/// What builds the tower from the checkpoint when it is first needed.
pub(super) type VisionBuild =
    dyn Fn() -> std::result::Result<VisionTower, super::EmbedError> + Send + Sync;

impl LazyVision {
    /// A tower already built.
    pub(super) fn built(tower: VisionTower) -> Self {
        Self {
            tower: OnceLock::from(tower),
            building: Mutex::new(()),
            build: None,
        }
    }

    /// A tower `build` makes on first use.
    pub(super) fn deferred(build: Box<VisionBuild>) -> Self {
        Self {
            tower: OnceLock::new(),
            building: Mutex::new(()),
            build: Some(build),
        }
    }

    /// Whether the tower has been built.
    pub(super) fn is_built(&self) -> bool {
        self.tower.get().is_some()
    }

    /// The tower, built now if this is its first use. A failed build is reported to this
    /// caller and tried again by the next one.
    pub(super) fn get(&self) -> std::result::Result<&VisionTower, super::EmbedError> {
        if let Some(tower) = self.tower.get() {
            return Ok(tower);
        }
        let _building = self.building.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tower) = self.tower.get() {
            return Ok(tower);
        }
        let build = self
            .build
            .as_ref()
            .expect("a tower without a builder is built at load");
        let tower = build()?;
        Ok(self.tower.get_or_init(|| tower))
    }
}
