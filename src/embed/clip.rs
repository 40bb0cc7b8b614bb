//! The CLIP model (Hugging Face `CLIPModel` layout) in candle: the text and vision towers
//! of one checkpoint, configured from its `config.json`, and the L2 normalisation that puts
//! their outputs in one space.

use candle_core::{DType, Result, Tensor, D};
use candle_nn::VarBuilder;

use super::config::ClipConfig;
use super::device::{Precision, TextPrecision};
use super::text::TextTower;
use super::vision::VisionTower;

/// Both towers of a CLIP checkpoint.
#[derive(Debug, Clone)]
pub struct ClipModel {
    /// Text tower.
    pub text: TextTower,
    /// Vision tower.
    pub vision: VisionTower,
    /// `exp(logit_scale)` from the checkpoint (1.0 if absent).
    pub logit_scale: f32,
}

impl ClipModel {
    /// Builds the model from weights named as in Hugging Face `CLIPModel`, in `precision`;
    /// [`TextPrecision::Int8`] quantises the text tower's linear layers on the CPU (a GPU
    /// leaves them in `precision`), [`TextPrecision::F32`] leaves them unquantised in
    /// `precision` (f32 for `Int8`).
    pub fn new(
        vb: VarBuilder,
        cfg: &ClipConfig,
        precision: Precision,
        text_precision: TextPrecision,
    ) -> Result<Self> {
        let (text, logit_scale) = load_text(vb.clone(), cfg, precision, text_precision)?;
        Ok(Self {
            text,
            vision: load_vision(vb, cfg, precision)?,
            logit_scale,
        })
    }
}

/// The text tower of a checkpoint (see [`ClipModel::new`] for `text_precision`) and its
/// `exp(logit_scale)` (1.0 when the checkpoint has none).
pub(super) fn load_text(
    vb: VarBuilder,
    cfg: &ClipConfig,
    precision: Precision,
    text_precision: TextPrecision,
) -> Result<(TextTower, f32)> {
    let text_precision = match (text_precision, precision) {
        (TextPrecision::Int8, _) if vb.device().is_cpu() => Precision::Int8,
        // `Int8` is the image tower's setting here; the text tower stays unquantised
        // (and on a GPU, in the model's dtype).
        (_, Precision::Int8) => Precision::F32,
        (_, other) => other,
    };
    let text = TextTower::new(
        vb.pp("text_model"),
        &cfg.text_config,
        cfg.projection_dim,
        vb.pp("text_projection"),
        text_precision,
    )?;
    let logit_scale = match vb.get((), "logit_scale") {
        Ok(t) => t.to_dtype(DType::F32)?.to_scalar::<f32>()?.exp(),
        Err(_) => 1.0,
    };
    Ok((text, logit_scale))
}

/// The vision tower of a checkpoint, its linear layers in `precision`.
pub(super) fn load_vision(
    vb: VarBuilder,
    cfg: &ClipConfig,
    precision: Precision,
) -> Result<VisionTower> {
    VisionTower::new(
        vb.pp("vision_model"),
        &cfg.vision_config,
        cfg.projection_dim,
        vb.pp("visual_projection"),
        precision,
    )
}

/// Divides each row by its L2 norm.
pub fn l2_normalise(xs: &Tensor) -> Result<Tensor> {
    let norm = xs
        .sqr()?
        .sum_keepdim(D::Minus1)?
        .sqrt()?
        .clamp(1e-12, f64::MAX)?;
    xs.broadcast_div(&norm)
}
