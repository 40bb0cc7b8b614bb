//! The layers both CLIP towers are built of: linear projections stored for fast batched
//! products (float32, 8-bit blocks or per-channel int8), multi-head self-attention, and the
//! pre-LayerNorm encoder layer and stack.

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{layer_norm, LayerNorm, VarBuilder};

use super::config::Activation;
use super::int8::Int8Linear;
use super::kernels::{BiasAct, BiasResidual};

/// How a tower stores its linear layers' weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WeightFormat {
    /// In the model's dtype, pre-transposed.
    Float,
    /// candle's 8-bit `Q8_0` blocks on the CPU (the text tower's `int8`).
    Q8Blocks,
    /// Per-output-channel int8 with per-row int8 activations on the CPU (the image
    /// tower's `int8`, [`Int8Linear`]).
    Int8Channels,
}

/// A linear layer stored for fast batched use: the weight pre-transposed to `(in, out)`
/// and contiguous (float32), or quantised ([`WeightFormat`]); inputs of any rank are folded
/// into one 2-D matrix product instead of a broadcast batch of small ones.
#[derive(Debug, Clone)]
pub(super) struct Proj {
    weight: ProjWeight,
    bias: Option<Tensor>,
    out_dim: usize,
}

#[derive(Debug, Clone)]
enum ProjWeight {
    F32(Tensor),
    Quantised(std::sync::Arc<QMatMul>),
    Int8(std::sync::Arc<Int8Linear>),
}

impl Proj {
    /// From a weight shaped `(out, in)` as stored by PyTorch, and an optional bias.
    pub(super) fn from_weight(
        weight: Tensor,
        bias: Option<Tensor>,
        format: WeightFormat,
    ) -> Result<Self> {
        let (out_dim, in_dim) = weight.dims2()?;
        let on_cpu = weight.device().is_cpu();
        let weight = match format {
            WeightFormat::Q8Blocks if on_cpu && in_dim % GgmlDType::Q8_0.block_size() == 0 => {
                let q = QTensor::quantize(&weight.to_dtype(DType::F32)?, GgmlDType::Q8_0)?;
                ProjWeight::Quantised(std::sync::Arc::new(QMatMul::from_qtensor(q)?))
            }
            WeightFormat::Int8Channels if on_cpu && weight.dtype() == DType::F32 => {
                ProjWeight::Int8(std::sync::Arc::new(Int8Linear::from_tensor(&weight)?))
            }
            _ => ProjWeight::F32(weight.t()?.contiguous()?),
        };
        Ok(Self {
            weight,
            bias,
            out_dim,
        })
    }

    pub(super) fn load(
        vb: VarBuilder,
        in_dim: usize,
        out_dim: usize,
        bias: bool,
        format: WeightFormat,
    ) -> Result<Self> {
        let w = vb.get((out_dim, in_dim), "weight")?;
        let b = if bias {
            Some(vb.get(out_dim, "bias")?)
        } else {
            None
        };
        Self::from_weight(w, b, format)
    }

    /// `xs W^T + b`.
    pub(super) fn forward(&self, xs: &Tensor) -> Result<Tensor> {
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
            ProjWeight::Int8(q) => flat.contiguous()?.apply_op1_no_bwd(q.as_ref()),
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

/// Multi-head self-attention with its output projection.
#[derive(Debug, Clone)]
struct Attention {
    /// q, k and v in one product; the query part is pre-scaled by `head_dim^-0.5`.
    qkv: Proj,
    out_proj: Proj,
    heads: usize,
    head_dim: usize,
}

impl Attention {
    fn new(vb: VarBuilder, hidden: usize, heads: usize, format: WeightFormat) -> Result<Self> {
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
            qkv: Proj::from_weight(weight, Some(bias), format)?,
            out_proj: Proj::load(vb.pp("out_proj"), hidden, hidden, true, format)?,
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

/// One pre-LayerNorm transformer layer: attention, then the MLP, each with a residual.
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
    fn new(vb: VarBuilder, shape: &TowerShape, format: WeightFormat) -> Result<Self> {
        let (hidden, inter) = (shape.hidden, shape.inter);
        Ok(Self {
            attn: Attention::new(vb.pp("self_attn"), hidden, shape.heads, format)?,
            ln1: layer_norm(hidden, shape.eps, vb.pp("layer_norm1"))?,
            fc1: Proj::load(vb.pp("mlp").pp("fc1"), hidden, inter, true, format)?,
            fc2: Proj::load(vb.pp("mlp").pp("fc2"), inter, hidden, true, format)?,
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
pub(super) struct TowerShape {
    /// Transformer layers.
    pub(super) layers: usize,
    /// Width of the residual stream.
    pub(super) hidden: usize,
    /// Width of the MLP.
    pub(super) inter: usize,
    /// Attention heads.
    pub(super) heads: usize,
    /// MLP activation.
    pub(super) act: Activation,
    /// LayerNorm epsilon.
    pub(super) eps: f64,
}

/// A tower's stack of encoder layers (`encoder.layers.N` in the checkpoint).
#[derive(Debug, Clone)]
pub(super) struct Encoder {
    layers: Vec<EncoderLayer>,
}

impl Encoder {
    /// Loads `shape.layers` layers from `vb` (the tower's `encoder` prefix).
    pub(super) fn new(vb: VarBuilder, shape: &TowerShape, format: WeightFormat) -> Result<Self> {
        let layers = (0..shape.layers)
            .map(|i| EncoderLayer::new(vb.pp("layers").pp(i), shape, format))
            .collect::<Result<_>>()?;
        Ok(Self { layers })
    }

    /// Runs the layers in order; `mask` is added to every layer's attention scores.
    pub(super) fn forward(&self, xs: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let mut xs = xs.clone();
        for layer in &self.layers {
            xs = layer.forward(&xs, mask)?;
        }
        Ok(xs)
    }
}
