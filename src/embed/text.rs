//! CLIP's text tower (`CLIPTextTransformer` and `text_projection`): token and position
//! embeddings, the causal encoder, the final LayerNorm, pooling at the end token.

use candle_core::{Device, Module, Result, Tensor};
use candle_nn::{embedding, layer_norm, Embedding, LayerNorm, VarBuilder};

use super::config::TextConfig;
use super::device::Precision;
use super::layers::{Encoder, Proj, TowerShape, WeightFormat};

/// The text tower plus its projection.
#[derive(Debug, Clone)]
pub struct TextTower {
    token_embedding: Embedding,
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
        Ok(Self {
            token_embedding: embedding(cfg.vocab_size, cfg.hidden_size, emb.pp("token_embedding"))?,
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
        let input = Tensor::from_vec(flat, (batch, len), device)?;
        let dtype = self.position_embedding.dtype();
        let pos = self.position_embedding.narrow(0, 0, len)?;
        let xs = self.token_embedding.forward(&input)?.broadcast_add(&pos)?;
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
