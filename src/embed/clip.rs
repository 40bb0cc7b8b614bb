//! The CLIP architecture (Hugging Face `CLIPModel` layout) in candle, configured from a
//! checkpoint's `config.json`.

use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::{
    conv2d_no_bias, embedding, layer_norm, linear, linear_no_bias, Conv2d, Conv2dConfig, Embedding,
    LayerNorm, Linear, VarBuilder,
};
use serde::Deserialize;

/// The activation between the two MLP layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `x * sigmoid(1.702 x)`, OpenAI's original.
    QuickGelu,
    /// Exact (erf) GELU.
    Gelu,
}

impl Activation {
    fn forward(self, xs: &Tensor) -> Result<Tensor> {
        match self {
            Activation::QuickGelu => xs * candle_nn::ops::sigmoid(&(xs * 1.702)?)?,
            Activation::Gelu => xs.gelu_erf(),
        }
    }
}

fn default_quick_gelu() -> Activation {
    Activation::QuickGelu
}
fn default_eps() -> f64 {
    1e-5
}

/// `text_config` of a CLIP `config.json` (Hugging Face defaults where absent).
#[derive(Debug, Clone, Deserialize)]
pub struct TextConfig {
    #[serde(default = "d_vocab")]
    /// Token vocabulary size.
    pub vocab_size: usize,
    #[serde(default = "d_text_hidden")]
    /// Width of the text transformer.
    pub hidden_size: usize,
    #[serde(default = "d_text_inter")]
    /// Width of the MLP.
    pub intermediate_size: usize,
    #[serde(default = "d_text_layers")]
    /// Transformer layers.
    pub num_hidden_layers: usize,
    #[serde(default = "d_text_heads")]
    /// Attention heads.
    pub num_attention_heads: usize,
    #[serde(default = "d_max_pos")]
    /// Longest token sequence (77 for CLIP).
    pub max_position_embeddings: usize,
    #[serde(default = "default_quick_gelu")]
    /// MLP activation.
    pub hidden_act: Activation,
    #[serde(default = "default_eps")]
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    #[serde(default = "d_eos")]
    /// End-of-text token id; `2` selects the legacy "highest id" pooling rule.
    pub eos_token_id: u32,
}

/// `vision_config` of a CLIP `config.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct VisionConfig {
    #[serde(default = "d_vis_hidden")]
    /// Width of the vision transformer.
    pub hidden_size: usize,
    #[serde(default = "d_vis_inter")]
    /// Width of the MLP.
    pub intermediate_size: usize,
    #[serde(default = "d_vis_layers")]
    /// Transformer layers.
    pub num_hidden_layers: usize,
    #[serde(default = "d_vis_heads")]
    /// Attention heads.
    pub num_attention_heads: usize,
    #[serde(default = "d_channels")]
    /// Input channels (3).
    pub num_channels: usize,
    #[serde(default = "d_image_size")]
    /// Input resolution (square).
    pub image_size: usize,
    #[serde(default = "d_patch")]
    /// Patch size.
    pub patch_size: usize,
    #[serde(default = "default_quick_gelu")]
    /// MLP activation.
    pub hidden_act: Activation,
    #[serde(default = "default_eps")]
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
}

fn d_vocab() -> usize {
    49408
}
fn d_text_hidden() -> usize {
    512
}
fn d_text_inter() -> usize {
    2048
}
fn d_text_layers() -> usize {
    12
}
fn d_text_heads() -> usize {
    8
}
fn d_max_pos() -> usize {
    77
}
fn d_eos() -> u32 {
    49407
}
fn d_vis_hidden() -> usize {
    768
}
fn d_vis_inter() -> usize {
    3072
}
fn d_vis_layers() -> usize {
    12
}
fn d_vis_heads() -> usize {
    12
}
fn d_channels() -> usize {
    3
}
fn d_image_size() -> usize {
    224
}
fn d_patch() -> usize {
    32
}
fn d_projection() -> usize {
    512
}

/// A whole CLIP `config.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct ClipConfig {
    /// Text tower settings.
    pub text_config: TextConfig,
    /// Vision tower settings.
    pub vision_config: VisionConfig,
    #[serde(default = "d_projection")]
    /// Width of the shared embedding space.
    pub projection_dim: usize,
    #[serde(default)]
    /// `model_type`; must be `clip` when present.
    pub model_type: Option<String>,
}

impl ClipConfig {
    /// Checks that the configuration describes something this implementation runs,
    /// naming the offending field otherwise.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if let Some(t) = &self.model_type {
            if t != "clip" {
                return Err(format!(
                    "model_type is {t:?}; only \"clip\" checkpoints are supported"
                ));
            }
        }
        let t = &self.text_config;
        let v = &self.vision_config;
        let checks: [(bool, &str); 8] = [
            (
                t.hidden_size % t.num_attention_heads.max(1) == 0 && t.num_attention_heads > 0,
                "text_config.num_attention_heads must divide text_config.hidden_size",
            ),
            (
                v.hidden_size % v.num_attention_heads.max(1) == 0 && v.num_attention_heads > 0,
                "vision_config.num_attention_heads must divide vision_config.hidden_size",
            ),
            (
                v.patch_size > 0 && v.image_size % v.patch_size.max(1) == 0,
                "vision_config.patch_size must divide vision_config.image_size",
            ),
            (v.num_channels == 3, "vision_config.num_channels must be 3"),
            (
                t.max_position_embeddings > 2,
                "text_config.max_position_embeddings must be more than 2",
            ),
            (self.projection_dim > 0, "projection_dim must be positive"),
            (
                t.num_hidden_layers > 0,
                "text_config.num_hidden_layers must be positive",
            ),
            (
                v.num_hidden_layers > 0,
                "vision_config.num_hidden_layers must be positive",
            ),
        ];
        for (ok, message) in checks {
            if !ok {
                return Err(message.to_string());
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    heads: usize,
    head_dim: usize,
    scale: f64,
}

impl Attention {
    fn new(vb: VarBuilder, hidden: usize, heads: usize) -> Result<Self> {
        let head_dim = hidden / heads;
        Ok(Self {
            q_proj: linear(hidden, hidden, vb.pp("q_proj"))?,
            k_proj: linear(hidden, hidden, vb.pp("k_proj"))?,
            v_proj: linear(hidden, hidden, vb.pp("v_proj"))?,
            out_proj: linear(hidden, hidden, vb.pp("out_proj"))?,
            heads,
            head_dim,
            scale: (head_dim as f64).powf(-0.5),
        })
    }

    fn split_heads(&self, xs: Tensor, batch: usize, len: usize) -> Result<Tensor> {
        xs.reshape((batch, len, self.heads, self.head_dim))?
            .transpose(1, 2)?
            .contiguous()
    }

    fn forward(&self, xs: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let (batch, len, hidden) = xs.dims3()?;
        let q = self.split_heads((self.q_proj.forward(xs)? * self.scale)?, batch, len)?;
        let k = self.split_heads(self.k_proj.forward(xs)?, batch, len)?;
        let v = self.split_heads(self.v_proj.forward(xs)?, batch, len)?;
        let mut weights = q.matmul(&k.t()?)?;
        if let Some(mask) = mask {
            weights = weights.broadcast_add(mask)?;
        }
        let weights = candle_nn::ops::softmax_last_dim(&weights)?;
        let out = weights
            .matmul(&v)?
            .transpose(1, 2)?
            .reshape((batch, len, hidden))?;
        self.out_proj.forward(&out)
    }
}

#[derive(Debug, Clone)]
struct EncoderLayer {
    attn: Attention,
    ln1: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    ln2: LayerNorm,
    act: Activation,
}

impl EncoderLayer {
    fn new(
        vb: VarBuilder,
        hidden: usize,
        inter: usize,
        heads: usize,
        act: Activation,
        eps: f64,
    ) -> Result<Self> {
        Ok(Self {
            attn: Attention::new(vb.pp("self_attn"), hidden, heads)?,
            ln1: layer_norm(hidden, eps, vb.pp("layer_norm1"))?,
            fc1: linear(hidden, inter, vb.pp("mlp").pp("fc1"))?,
            fc2: linear(inter, hidden, vb.pp("mlp").pp("fc2"))?,
            ln2: layer_norm(hidden, eps, vb.pp("layer_norm2"))?,
            act,
        })
    }

    fn forward(&self, xs: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let xs = (xs + self.attn.forward(&self.ln1.forward(xs)?, mask)?)?;
        let h = self
            .act
            .forward(&self.fc1.forward(&self.ln2.forward(&xs)?)?)?;
        xs + self.fc2.forward(&h)?
    }
}

fn encoder(
    vb: VarBuilder,
    layers: usize,
    hidden: usize,
    inter: usize,
    heads: usize,
    act: Activation,
    eps: f64,
) -> Result<Vec<EncoderLayer>> {
    (0..layers)
        .map(|i| EncoderLayer::new(vb.pp("layers").pp(i), hidden, inter, heads, act, eps))
        .collect()
}

/// The text tower plus its projection.
#[derive(Debug, Clone)]
pub struct TextTower {
    token_embedding: Embedding,
    position_embedding: Tensor,
    layers: Vec<EncoderLayer>,
    final_ln: LayerNorm,
    projection: Linear,
    eos_token_id: u32,
    max_len: usize,
}

impl TextTower {
    fn new(
        vb: VarBuilder,
        cfg: &TextConfig,
        projection_dim: usize,
        projection_vb: VarBuilder,
    ) -> Result<Self> {
        let emb = vb.pp("embeddings");
        Ok(Self {
            token_embedding: embedding(cfg.vocab_size, cfg.hidden_size, emb.pp("token_embedding"))?,
            position_embedding: emb
                .pp("position_embedding")
                .get((cfg.max_position_embeddings, cfg.hidden_size), "weight")?,
            layers: encoder(
                vb.pp("encoder"),
                cfg.num_hidden_layers,
                cfg.hidden_size,
                cfg.intermediate_size,
                cfg.num_attention_heads,
                cfg.hidden_act,
                cfg.layer_norm_eps,
            )?,
            final_ln: layer_norm(
                cfg.hidden_size,
                cfg.layer_norm_eps,
                vb.pp("final_layer_norm"),
            )?,
            projection: linear_no_bias(cfg.hidden_size, projection_dim, projection_vb)?,
            eos_token_id: cfg.eos_token_id,
            max_len: cfg.max_position_embeddings,
        })
    }

    /// Longest token sequence the tower accepts.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// The position pooled for one sequence: the first end-of-text token, or (legacy
    /// configs with `eos_token_id == 2`) the highest token id.
    pub fn pooled_position(&self, ids: &[u32]) -> usize {
        if self.eos_token_id == 2 {
            let mut best = 0;
            for (i, &id) in ids.iter().enumerate() {
                if id > ids[best] {
                    best = i;
                }
            }
            best
        } else {
            ids.iter()
                .position(|&id| id == self.eos_token_id)
                .unwrap_or(ids.len().saturating_sub(1))
        }
    }

    /// Projected (not normalised) features for token sequences of equal length.
    pub fn forward(&self, ids: &[Vec<u32>], device: &Device) -> Result<Tensor> {
        let batch = ids.len();
        let len = ids.first().map(|s| s.len()).unwrap_or(0);
        let flat: Vec<u32> = ids.iter().flat_map(|s| s.iter().copied()).collect();
        let input = Tensor::from_vec(flat, (batch, len), device)?;
        let dtype = self.position_embedding.dtype();
        let pos = self.position_embedding.narrow(0, 0, len)?;
        let mut xs = self.token_embedding.forward(&input)?.broadcast_add(&pos)?;
        let mask: Vec<f32> = (0..len)
            .flat_map(|i| (0..len).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
            .collect();
        let mask = Tensor::from_vec(mask, (len, len), device)?.to_dtype(dtype)?;
        for layer in &self.layers {
            xs = layer.forward(&xs, Some(&mask))?;
        }
        let xs = self.final_ln.forward(&xs)?;
        let positions: Vec<u32> = ids
            .iter()
            .enumerate()
            .map(|(b, s)| (b * len + self.pooled_position(s)) as u32)
            .collect();
        let positions = Tensor::from_vec(positions, batch, device)?;
        let pooled = xs.reshape((batch * len, ()))?.index_select(&positions, 0)?;
        self.projection.forward(&pooled)
    }
}

/// The vision tower plus its projection.
#[derive(Debug, Clone)]
pub struct VisionTower {
    class_embedding: Tensor,
    patch_embedding: Conv2d,
    position_embedding: Tensor,
    pre_ln: LayerNorm,
    layers: Vec<EncoderLayer>,
    post_ln: LayerNorm,
    projection: Linear,
}

impl VisionTower {
    fn new(
        vb: VarBuilder,
        cfg: &VisionConfig,
        projection_dim: usize,
        projection_vb: VarBuilder,
    ) -> Result<Self> {
        let emb = vb.pp("embeddings");
        let patches = (cfg.image_size / cfg.patch_size).pow(2);
        let conv = Conv2dConfig {
            stride: cfg.patch_size,
            ..Default::default()
        };
        Ok(Self {
            class_embedding: emb.get(cfg.hidden_size, "class_embedding")?,
            patch_embedding: conv2d_no_bias(
                cfg.num_channels,
                cfg.hidden_size,
                cfg.patch_size,
                conv,
                emb.pp("patch_embedding"),
            )?,
            position_embedding: emb
                .pp("position_embedding")
                .get((patches + 1, cfg.hidden_size), "weight")?,
            pre_ln: layer_norm(cfg.hidden_size, cfg.layer_norm_eps, vb.pp("pre_layrnorm"))?,
            layers: encoder(
                vb.pp("encoder"),
                cfg.num_hidden_layers,
                cfg.hidden_size,
                cfg.intermediate_size,
                cfg.num_attention_heads,
                cfg.hidden_act,
                cfg.layer_norm_eps,
            )?,
            post_ln: layer_norm(cfg.hidden_size, cfg.layer_norm_eps, vb.pp("post_layernorm"))?,
            projection: linear_no_bias(cfg.hidden_size, projection_dim, projection_vb)?,
        })
    }

    /// Projected (not normalised) features for pixels shaped `(batch, 3, size, size)`.
    pub fn forward(&self, pixels: &Tensor) -> Result<Tensor> {
        let batch = pixels.dim(0)?;
        let patches = self
            .patch_embedding
            .forward(pixels)?
            .flatten_from(2)?
            .transpose(1, 2)?;
        let hidden = self.class_embedding.dim(0)?;
        let class = self
            .class_embedding
            .reshape((1, 1, hidden))?
            .broadcast_as((batch, 1, hidden))?;
        let xs = Tensor::cat(&[&class, &patches], 1)?.broadcast_add(&self.position_embedding)?;
        let mut xs = self.pre_ln.forward(&xs)?;
        for layer in &self.layers {
            xs = layer.forward(&xs, None)?;
        }
        let pooled = self.post_ln.forward(&xs.narrow(1, 0, 1)?.squeeze(1)?)?;
        self.projection.forward(&pooled)
    }
}

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
    /// Builds the model from weights named as in Hugging Face `CLIPModel`.
    pub fn new(vb: VarBuilder, cfg: &ClipConfig) -> Result<Self> {
        let text = TextTower::new(
            vb.pp("text_model"),
            &cfg.text_config,
            cfg.projection_dim,
            vb.pp("text_projection"),
        )?;
        let vision = VisionTower::new(
            vb.pp("vision_model"),
            &cfg.vision_config,
            cfg.projection_dim,
            vb.pp("visual_projection"),
        )?;
        let logit_scale = match vb.get((), "logit_scale") {
            Ok(t) => t.to_dtype(DType::F32)?.to_scalar::<f32>()?.exp(),
            Err(_) => 1.0,
        };
        Ok(Self {
            text,
            vision,
            logit_scale,
        })
    }
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
