//! CLIP's text tower (`CLIPTextTransformer` and `text_projection`): token and position
//! embeddings, the causal encoder, the final LayerNorm, pooling at the end token.

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{layer_norm, LayerNorm, VarBuilder};

use super::config::TextConfig;
use super::device::Precision;
use super::layers::{Encoder, Proj, TowerShape, WeightFormat};

/// The text tower plus its projection.
#[derive(Debug, Clone)]
pub struct TextTower {
    /// `(vocab, hidden)`, stored compactly on the CPU (see [`TokenTable`]).
    token_embedding: TokenTable,
    position_embedding: Tensor,
    encoder: Encoder,
    final_ln: LayerNorm,
    projection: Proj,
    eos_token_id: u32,
    max_len: usize,
}

impl TextTower {
    /// Loads the tower from `vb` (`text_model`) and its projection from `projection_vb`
    /// (`text_projection`), the linear layers in `precision` (`Int8`: candle's 8-bit blocks).
    pub(super) fn new(
        vb: VarBuilder,
        cfg: &TextConfig,
        projection_dim: usize,
        projection_vb: VarBuilder,
        precision: Precision,
    ) -> Result<Self> {
        let format = match precision {
            Precision::Int8 => WeightFormat::Q8Blocks,
            _ => WeightFormat::Float,
        };
        let emb = vb.pp("embeddings");
        let shape = TowerShape {
            layers: cfg.num_hidden_layers,
            hidden: cfg.hidden_size,
            inter: cfg.intermediate_size,
            heads: cfg.num_attention_heads,
            act: cfg.activation(),
            eps: cfg.layer_norm_eps,
        };
        let token_embedding = emb
            .pp("token_embedding")
            .get((cfg.vocab_size, cfg.hidden_size), "weight")?;
        Ok(Self {
            token_embedding: TokenTable::new(token_embedding, precision)?,
            position_embedding: emb
                .pp("position_embedding")
                .get((cfg.max_position_embeddings, cfg.hidden_size), "weight")?,
            encoder: Encoder::new(vb.pp("encoder"), &shape, format)?,
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
                format,
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
        let dtype = self.position_embedding.dtype();
        let pos = self.position_embedding.narrow(0, 0, len)?;
        let hidden = self.position_embedding.dim(1)?;
        let xs = self
            .token_embedding
            .rows(&flat, dtype, device)?
            .reshape((batch, len, hidden))?
            .broadcast_add(&pos)?;
        let mask: Vec<f32> = (0..len)
            .flat_map(|i| (0..len).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
            .collect();
        let mask = Tensor::from_vec(mask, (len, len), device)?.to_dtype(dtype)?;
        let xs = self.encoder.forward(&xs, Some(&mask))?;
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

/// The token embedding table as stored. On the CPU a float32 table (49,408 × 512 values are
/// 97 MB for a ViT-B/32) is kept in float16 beside a float32 text tower (48 MB), and in int8
/// with one float32 scale per row beside the int8 text tower (24 MB); looked-up rows are
/// widened back. Text embeddings stay within cosine 0.9999 (float16) and 0.999 (int8) of a
/// float32 table (see the tests).
#[derive(Debug, Clone)]
enum TokenTable {
    /// As loaded, or float16.
    Tensor(Tensor),
    /// Row `r` is `values[r * hidden..][..hidden] * scales[r]`.
    Int8 {
        values: std::sync::Arc<Vec<i8>>,
        scales: std::sync::Arc<Vec<f32>>,
        hidden: usize,
    },
}

impl TokenTable {
    fn new(table: Tensor, precision: Precision) -> Result<Self> {
        if table.dtype() != DType::F32 || !table.device().is_cpu() {
            return Ok(Self::Tensor(table));
        }
        if precision != Precision::Int8 {
            return Ok(Self::Tensor(table.to_dtype(DType::F16)?));
        }
        let (vocab, hidden) = table.dims2()?;
        let (mut values, mut scales) = (
            Vec::with_capacity(vocab * hidden),
            Vec::with_capacity(vocab),
        );
        for row in table.to_vec2::<f32>()? {
            let max = row.iter().fold(0f32, |m, x| m.max(x.abs()));
            let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
            scales.push(scale);
            values.extend(
                row.iter()
                    .map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8),
            );
        }
        Ok(Self::Int8 {
            values: std::sync::Arc::new(values),
            scales: std::sync::Arc::new(scales),
            hidden,
        })
    }

    /// The rows of `ids`, `(ids.len(), hidden)` in `dtype`.
    fn rows(&self, ids: &[u32], dtype: DType, device: &Device) -> Result<Tensor> {
        match self {
            Self::Tensor(table) => {
                let ids = Tensor::from_slice(ids, ids.len(), device)?;
                table.index_select(&ids, 0)?.to_dtype(dtype)
            }
            Self::Int8 {
                values,
                scales,
                hidden,
            } => {
                let mut out = Vec::with_capacity(ids.len() * hidden);
                for &id in ids {
                    let id = id as usize;
                    let (Some(&scale), Some(row)) =
                        (scales.get(id), values.get(id * hidden..(id + 1) * hidden))
                    else {
                        candle_core::bail!(
                            "token id {id} is outside the vocabulary ({})",
                            scales.len()
                        );
                    };
                    out.extend(row.iter().map(|&v| f32::from(v) * scale));
                }
                Tensor::from_vec(out, (ids.len(), *hidden), device)?.to_dtype(dtype)
            }
        }
    }

    /// How the table is stored, for tests.
    #[cfg(test)]
    fn kind(&self) -> &'static str {
        match self {
            Self::Tensor(t) if t.dtype() == DType::F16 => "f16",
            Self::Tensor(_) => "as loaded",
            Self::Int8 { .. } => "int8",
        }
    }
}

#[cfg(test)]
impl TextTower {
    /// The tower with its token table replaced (for comparing table precisions).
    pub(super) fn with_token_table(mut self, table: Tensor) -> Self {
        self.token_embedding = TokenTable::Tensor(table);
        self
    }

    /// How the token table is stored: `f16`, `int8` or `as loaded`.
    pub(super) fn token_table_kind(&self) -> &'static str {
        self.token_embedding.kind()
    }
}
