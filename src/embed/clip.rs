//! The CLIP architecture (Hugging Face `CLIPModel` layout) in candle, configured from a
//! checkpoint's `config.json`.

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::{embedding, layer_norm, Embedding, LayerNorm, VarBuilder};
use serde::Deserialize;

use super::kernels::{BiasAct, BiasResidual};
use super::Precision;

/// The activation between the two MLP layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `x * sigmoid(1.702 x)`, OpenAI's original (`quick_gelu`).
    QuickGelu,
    /// Exact (erf) GELU (`gelu`).
    Gelu,
    /// The tanh approximation of GELU (`gelu_new`, `gelu_pytorch_tanh`).
    GeluTanh,
}

impl Activation {
    /// The activation a `hidden_act` value names, if supported.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "quick_gelu" => Some(Self::QuickGelu),
            "gelu" => Some(Self::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" => Some(Self::GeluTanh),
            _ => None,
        }
    }

    pub(crate) fn forward(self, xs: &Tensor) -> Result<Tensor> {
        match self {
            Activation::QuickGelu => xs * candle_nn::ops::sigmoid(&(xs * 1.702)?)?,
            Activation::Gelu => xs.gelu_erf(),
            Activation::GeluTanh => xs.gelu(),
        }
    }
}

fn default_quick_gelu() -> String {
    "quick_gelu".into()
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
    /// MLP activation name (`quick_gelu`, `gelu`, `gelu_new`, `gelu_pytorch_tanh`).
    pub hidden_act: String,
    #[serde(default = "default_eps")]
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    #[serde(default = "d_eos")]
    /// End-of-text token id; `2` selects the legacy "highest id" pooling rule.
    pub eos_token_id: u32,
}

impl TextConfig {
    /// The MLP activation (quick GELU if `hidden_act` is unsupported; `validate` refuses it).
    pub fn activation(&self) -> Activation {
        Activation::from_name(&self.hidden_act).unwrap_or(Activation::QuickGelu)
    }
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
    /// MLP activation name.
    pub hidden_act: String,
    #[serde(default = "default_eps")]
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
}

impl VisionConfig {
    /// The MLP activation (quick GELU if `hidden_act` is unsupported; `validate` refuses it).
    pub fn activation(&self) -> Activation {
        Activation::from_name(&self.hidden_act).unwrap_or(Activation::QuickGelu)
    }
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
    /// Parses and validates `config.json` text. As transformers' `CLIPConfig` does, the
    /// legacy `text_config_dict` / `vision_config_dict` entries override `text_config` /
    /// `vision_config` key by key. Errors name the offending field.
    pub fn from_json(text: &str) -> std::result::Result<Self, String> {
        let mut raw: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let obj = raw
            .as_object_mut()
            .ok_or_else(|| "the top level is not a JSON object".to_string())?;
        if let Some(t) = obj.get("model_type") {
            if t.as_str() != Some("clip") {
                return Err(format!(
                    "model_type is {t}; only \"clip\" (CLIPModel) checkpoints are supported"
                ));
            }
        }
        for tower in ["text_config", "vision_config"] {
            let legacy = obj.remove(&format!("{tower}_dict"));
            let mut merged = match obj.remove(tower) {
                Some(serde_json::Value::Object(m)) => m,
                Some(serde_json::Value::Null) | None => serde_json::Map::new(),
                Some(other) => return Err(format!("{tower} is {other}, not an object")),
            };
            if let Some(serde_json::Value::Object(extra)) = legacy {
                merged.extend(extra);
            } else if merged.is_empty() {
                return Err(format!(
                    "{tower} is missing; a CLIPModel config.json has both text_config and vision_config"
                ));
            }
            obj.insert(tower.to_string(), serde_json::Value::Object(merged));
        }
        let cfg: ClipConfig = serde_json::from_value(raw).map_err(|e| e.to_string())?;
        cfg.validate()?;
        Ok(cfg)
    }

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
        for (field, act) in [
            ("text_config.hidden_act", &t.hidden_act),
            ("vision_config.hidden_act", &v.hidden_act),
        ] {
            if Activation::from_name(act).is_none() {
                return Err(format!(
                    "{field} is {act:?}; supported: quick_gelu, gelu, gelu_new, gelu_pytorch_tanh"
                ));
            }
        }
        let checks: [(bool, &str); 11] = [
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
            (
                (t.eos_token_id as usize) < t.vocab_size,
                "text_config.eos_token_id must be below text_config.vocab_size",
            ),
            (
                t.layer_norm_eps > 0.0,
                "text_config.layer_norm_eps must be positive",
            ),
            (
                v.layer_norm_eps > 0.0,
                "vision_config.layer_norm_eps must be positive",
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

/// A linear layer stored for fast batched use: the weight pre-transposed to `(in, out)`
/// and contiguous (float32), or quantised to 8-bit blocks; inputs of any rank are folded
/// into one 2-D matrix product instead of a broadcast batch of small ones.
#[derive(Debug, Clone)]
struct Proj {
    weight: ProjWeight,
    bias: Option<Tensor>,
    out_dim: usize,
}

#[derive(Debug, Clone)]
enum ProjWeight {
    F32(Tensor),
    Quantised(std::sync::Arc<QMatMul>),
}

impl Proj {
    /// From a weight shaped `(out, in)` as stored by PyTorch, and an optional bias.
    fn from_weight(weight: Tensor, bias: Option<Tensor>, precision: Precision) -> Result<Self> {
        let (out_dim, in_dim) = weight.dims2()?;
        let quantise = precision == Precision::Int8
            && in_dim % GgmlDType::Q8_0.block_size() == 0
            && weight.device().is_cpu();
        let weight = if quantise {
            let q = QTensor::quantize(&weight.to_dtype(DType::F32)?, GgmlDType::Q8_0)?;
            ProjWeight::Quantised(std::sync::Arc::new(QMatMul::from_qtensor(q)?))
        } else {
            ProjWeight::F32(weight.t()?.contiguous()?)
        };
        Ok(Self {
            weight,
            bias,
            out_dim,
        })
    }

    fn load(
        vb: VarBuilder,
        in_dim: usize,
        out_dim: usize,
        bias: bool,
        precision: Precision,
    ) -> Result<Self> {
        let w = vb.get((out_dim, in_dim), "weight")?;
        let b = if bias {
            Some(vb.get(out_dim, "bias")?)
        } else {
            None
        };
        Self::from_weight(w, b, precision)
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.forward_act(xs, None)
    }

    /// `xs W^T + b + residual`, the additions fused into one pass on the CPU.
    fn forward_residual(&self, xs: &Tensor, residual: &Tensor) -> Result<Tensor> {
        let Some(bias) = &self.bias else {
            return self.forward(xs)? + residual;
        };
        let ys = self.matmul(xs)?;
        let residual = residual.reshape(ys.shape())?;
        BiasResidual
            .apply(&ys, bias, &residual)?
            .reshape(residual_shape(xs, self.out_dim))
    }

    /// `xs W^T` with `xs` folded to two dimensions.
    fn matmul(&self, xs: &Tensor) -> Result<Tensor> {
        let in_dim = *xs.dims().last().unwrap_or(&0);
        let rows = xs.elem_count() / in_dim.max(1);
        let flat = xs.reshape((rows, in_dim))?;
        match &self.weight {
            ProjWeight::F32(w) => flat.matmul(w),
            ProjWeight::Quantised(q) => q.forward(&flat),
        }
    }

    /// `act(xs W^T + b)`, the bias and activation fused into one pass on the CPU.
    fn forward_act(&self, xs: &Tensor, act: Option<Activation>) -> Result<Tensor> {
        let ys = self.matmul(xs)?;
        let ys = match (&self.bias, act) {
            (Some(b), _) => BiasAct(act).apply(&ys, b)?,
            (None, Some(act)) => act.forward(&ys)?,
            (None, None) => ys,
        };
        ys.reshape(residual_shape(xs, self.out_dim))
    }
}

/// The shape of `xs` with its last dimension replaced by `out_dim`.
fn residual_shape(xs: &Tensor, out_dim: usize) -> Vec<usize> {
    let mut dims = xs.dims().to_vec();
    if let Some(last) = dims.last_mut() {
        *last = out_dim;
    }
    dims
}

#[derive(Debug, Clone)]
struct Attention {
    /// q, k and v in one product; the query part is pre-scaled by `head_dim^-0.5`.
    qkv: Proj,
    out_proj: Proj,
    heads: usize,
    head_dim: usize,
}

impl Attention {
    fn new(vb: VarBuilder, hidden: usize, heads: usize, precision: Precision) -> Result<Self> {
        let head_dim = hidden / heads;
        let scale = (head_dim as f64).powf(-0.5);
        let part = |name: &str| -> Result<(Tensor, Tensor)> {
            let p = vb.pp(name);
            Ok((p.get((hidden, hidden), "weight")?, p.get(hidden, "bias")?))
        };
        let (qw, qb) = part("q_proj")?;
        let (kw, kb) = part("k_proj")?;
        let (vw, vb_) = part("v_proj")?;
        let weight = Tensor::cat(&[&(qw * scale)?, &kw, &vw], 0)?;
        let bias = Tensor::cat(&[&(qb * scale)?, &kb, &vb_], 0)?;
        Ok(Self {
            qkv: Proj::from_weight(weight, Some(bias), precision)?,
            out_proj: Proj::load(vb.pp("out_proj"), hidden, hidden, true, precision)?,
            heads,
            head_dim,
        })
    }

    /// `residual + attention(xs)`.
    fn forward(&self, xs: &Tensor, mask: Option<&Tensor>, residual: &Tensor) -> Result<Tensor> {
        let (batch, len, hidden) = xs.dims3()?;
        // (batch, len, 3, heads, head_dim) -> (3, batch, heads, len, head_dim)
        let qkv = self
            .qkv
            .forward(xs)?
            .reshape((batch, len, 3, self.heads, self.head_dim))?
            .permute((2, 0, 3, 1, 4))?
            .contiguous()?;
        let q = qkv.get(0)?;
        let k = qkv.get(1)?;
        let v = qkv.get(2)?;
        let mut weights = q.matmul(&k.t()?)?;
        if let Some(mask) = mask {
            weights = weights.broadcast_add(mask)?;
        }
        let weights = candle_nn::ops::softmax_last_dim(&weights)?;
        let out = weights
            .matmul(&v)?
            .transpose(1, 2)?
            .reshape((batch, len, hidden))?;
        self.out_proj.forward_residual(&out, residual)
    }
}

#[derive(Debug, Clone)]
struct EncoderLayer {
    attn: Attention,
    ln1: LayerNorm,
    fc1: Proj,
    fc2: Proj,
    ln2: LayerNorm,
    act: Activation,
}

impl EncoderLayer {
    fn new(vb: VarBuilder, shape: &TowerShape, precision: Precision) -> Result<Self> {
        let (hidden, inter) = (shape.hidden, shape.inter);
        Ok(Self {
            attn: Attention::new(vb.pp("self_attn"), hidden, shape.heads, precision)?,
            ln1: layer_norm(hidden, shape.eps, vb.pp("layer_norm1"))?,
            fc1: Proj::load(vb.pp("mlp").pp("fc1"), hidden, inter, true, precision)?,
            fc2: Proj::load(vb.pp("mlp").pp("fc2"), inter, hidden, true, precision)?,
            ln2: layer_norm(hidden, shape.eps, vb.pp("layer_norm2"))?,
            act: shape.act,
        })
    }

    fn forward(&self, xs: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let xs = self.attn.forward(&self.ln1.forward(xs)?, mask, xs)?;
        let h = self
            .fc1
            .forward_act(&self.ln2.forward(&xs)?, Some(self.act))?;
        self.fc2.forward_residual(&h, &xs)
    }
}

/// The sizes one tower's encoder layers share.
struct TowerShape {
    layers: usize,
    hidden: usize,
    inter: usize,
    heads: usize,
    act: Activation,
    eps: f64,
}

fn encoder(vb: VarBuilder, shape: &TowerShape, precision: Precision) -> Result<Vec<EncoderLayer>> {
    (0..shape.layers)
        .map(|i| EncoderLayer::new(vb.pp("layers").pp(i), shape, precision))
        .collect()
}

/// The text tower plus its projection.
#[derive(Debug, Clone)]
pub struct TextTower {
    token_embedding: Embedding,
    position_embedding: Tensor,
    layers: Vec<EncoderLayer>,
    final_ln: LayerNorm,
    projection: Proj,
    eos_token_id: u32,
    max_len: usize,
}

impl TextTower {
    fn new(
        vb: VarBuilder,
        cfg: &TextConfig,
        projection_dim: usize,
        projection_vb: VarBuilder,
        precision: Precision,
    ) -> Result<Self> {
        let emb = vb.pp("embeddings");
        let shape = TowerShape {
            layers: cfg.num_hidden_layers,
            hidden: cfg.hidden_size,
            inter: cfg.intermediate_size,
            heads: cfg.num_attention_heads,
            act: cfg.activation(),
            eps: cfg.layer_norm_eps,
        };
        Ok(Self {
            token_embedding: embedding(cfg.vocab_size, cfg.hidden_size, emb.pp("token_embedding"))?,
            position_embedding: emb
                .pp("position_embedding")
                .get((cfg.max_position_embeddings, cfg.hidden_size), "weight")?,
            layers: encoder(vb.pp("encoder"), &shape, precision)?,
            final_ln: layer_norm(
                cfg.hidden_size,
                cfg.layer_norm_eps,
                vb.pp("final_layer_norm"),
            )?,
            projection: Proj::load(
                projection_vb,
                cfg.hidden_size,
                projection_dim,
                false,
                precision,
            )?,
            eos_token_id: cfg.eos_token_id,
            max_len: cfg.max_position_embeddings,
        })
    }

    /// Longest token sequence the tower accepts.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// The position pooled for one sequence, as `CLIPTextTransformer` chooses it: the
    /// first `eos_token_id`, or for legacy configs with `eos_token_id == 2`, the first
    /// occurrence of the highest token id.
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
    /// The patch-embedding convolution as a matrix product over flattened patches.
    patch_embedding: Proj,
    patch_size: usize,
    position_embedding: Tensor,
    pre_ln: LayerNorm,
    layers: Vec<EncoderLayer>,
    post_ln: LayerNorm,
    projection: Proj,
}

impl VisionTower {
    fn new(
        vb: VarBuilder,
        cfg: &VisionConfig,
        projection_dim: usize,
        projection_vb: VarBuilder,
        precision: Precision,
    ) -> Result<Self> {
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
            patch_embedding: Proj::from_weight(kernel, None, Precision::F32)?,
            patch_size: p,
            position_embedding: emb
                .pp("position_embedding")
                .get((patches + 1, cfg.hidden_size), "weight")?,
            pre_ln: layer_norm(cfg.hidden_size, cfg.layer_norm_eps, vb.pp("pre_layrnorm"))?,
            layers: encoder(vb.pp("encoder"), &shape, precision)?,
            post_ln: layer_norm(cfg.hidden_size, cfg.layer_norm_eps, vb.pp("post_layernorm"))?,
            projection: Proj::load(
                projection_vb,
                cfg.hidden_size,
                projection_dim,
                false,
                precision,
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
    /// Builds the model from weights named as in Hugging Face `CLIPModel`; the text tower's
    /// linear layers in `text_precision` (`Precision::Int8` quantises them on the CPU; any
    /// other value means the same as `precision`).
    pub fn new(
        vb: VarBuilder,
        cfg: &ClipConfig,
        precision: Precision,
        text_precision: Precision,
    ) -> Result<Self> {
        let text_precision = if text_precision == Precision::Int8 {
            Precision::Int8
        } else {
            precision
        };
        let text = TextTower::new(
            vb.pp("text_model"),
            &cfg.text_config,
            cfg.projection_dim,
            vb.pp("text_projection"),
            text_precision,
        )?;
        let vision = VisionTower::new(
            vb.pp("vision_model"),
            &cfg.vision_config,
            cfg.projection_dim,
            vb.pp("visual_projection"),
            precision,
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
