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
    /// `(vocab, hidden)`; float16 when the tower runs in float32 on the CPU (half the
    /// memory: 49,408 × 512 values are 97 MB in float32), each looked-up row widened back.
    token_embedding: Tensor,
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
            token_embedding: compact_table(token_embedding)?,
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
        let input = Tensor::from_vec(flat, batch * len, device)?;
        let dtype = self.position_embedding.dtype();
        let pos = self.position_embedding.narrow(0, 0, len)?;
        let hidden = self.position_embedding.dim(1)?;
        let xs = self
            .token_embedding
            .index_select(&input, 0)?
            .to_dtype(dtype)?
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

/// The token table as stored: float16 for a float32 table on the CPU (widened per looked-up
/// row in [`TextTower::forward`]; text embeddings stay within cosine 0.9999 of float32, see
/// the tests), any other table as it is.
fn compact_table(table: Tensor) -> Result<Tensor> {
    if table.dtype() == DType::F32 && table.device().is_cpu() {
        table.to_dtype(DType::F16)
    } else {
        Ok(table)
    }
}

#[cfg(test)]
impl TextTower {
    /// The tower with its token table replaced (for comparing table precisions).
    pub(super) fn with_token_table(mut self, table: Tensor) -> Self {
        self.token_embedding = table;
        self
    }

    /// The dtype the token table is stored in.
    pub(super) fn token_table_dtype(&self) -> DType {
        self.token_embedding.dtype()
    }
}
