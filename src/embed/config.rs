//! A CLIP checkpoint's `config.json` (Hugging Face `CLIPConfig`): the two towers' sizes and
//! activations, with Hugging Face's defaults where a key is absent, and the checks that
//! refuse what this implementation does not run.

use candle_core::{Result, Tensor};
use serde::Deserialize;

/// Why a `config.json` was refused; each message names the offending field.
#[derive(Debug, thiserror::Error)]
pub enum ClipConfigError {
    /// The text is not JSON.
    #[error("not valid JSON: {0}")]
    Json(serde_json::Error),
    /// The JSON is not an object.
    #[error("the top level is not a JSON object")]
    NotAnObject,
    /// `model_type` names another architecture (the value as written).
    #[error("model_type is {0}; only \"clip\" (CLIPModel) checkpoints are supported")]
    ModelType(String),
    /// `text_config` or `vision_config` is neither an object nor null.
    #[error("{tower} is {value}, not an object")]
    TowerNotAnObject {
        /// `text_config` or `vision_config`.
        tower: &'static str,
        /// The value as written.
        value: String,
    },
    /// `text_config` or `vision_config` (and its legacy `_dict` form) is absent.
    #[error("{0} is missing; a CLIPModel config.json has both text_config and vision_config")]
    TowerMissing(&'static str),
    /// A field has the wrong type (serde's message).
    #[error("{0}")]
    Fields(serde_json::Error),
    /// A `hidden_act` this implementation has no kernel for.
    #[error("{field} is {value:?}; supported: quick_gelu, gelu, gelu_new, gelu_pytorch_tanh")]
    Activation {
        /// `text_config.hidden_act` or `vision_config.hidden_act`.
        field: &'static str,
        /// The value as written.
        value: String,
    },
    /// Sizes that do not fit together, or a setting this implementation does not run.
    #[error("{0}")]
    Unsupported(&'static str),
}

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
    pub fn from_json(text: &str) -> std::result::Result<Self, ClipConfigError> {
        let mut raw: serde_json::Value =
            serde_json::from_str(text).map_err(ClipConfigError::Json)?;
        let obj = raw.as_object_mut().ok_or(ClipConfigError::NotAnObject)?;
        if let Some(t) = obj.get("model_type") {
            if t.as_str() != Some("clip") {
                return Err(ClipConfigError::ModelType(t.to_string()));
            }
        }
        for tower in ["text_config", "vision_config"] {
            let legacy = obj.remove(&format!("{tower}_dict"));
            let mut merged = match obj.remove(tower) {
                Some(serde_json::Value::Object(m)) => m,
                Some(serde_json::Value::Null) | None => serde_json::Map::new(),
                Some(other) => {
                    return Err(ClipConfigError::TowerNotAnObject {
                        tower,
                        value: other.to_string(),
                    })
                }
            };
            if let Some(serde_json::Value::Object(extra)) = legacy {
                merged.extend(extra);
            } else if merged.is_empty() {
                return Err(ClipConfigError::TowerMissing(tower));
            }
            obj.insert(tower.to_string(), serde_json::Value::Object(merged));
        }
        let cfg: ClipConfig = serde_json::from_value(raw).map_err(ClipConfigError::Fields)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks that the configuration describes something this implementation runs,
    /// naming the offending field otherwise.
    pub fn validate(&self) -> std::result::Result<(), ClipConfigError> {
        if let Some(t) = &self.model_type {
            if t != "clip" {
                return Err(ClipConfigError::ModelType(format!("{t:?}")));
            }
        }
        let t = &self.text_config;
        let v = &self.vision_config;
        for (field, act) in [
            ("text_config.hidden_act", &t.hidden_act),
            ("vision_config.hidden_act", &v.hidden_act),
        ] {
            if Activation::from_name(act).is_none() {
                return Err(ClipConfigError::Activation {
                    field,
                    value: act.clone(),
                });
            }
        }
        let checks: [(bool, &str); 11] = [
            (
                t.hidden_size.is_multiple_of(t.num_attention_heads.max(1))
                    && t.num_attention_heads > 0,
                "text_config.num_attention_heads must divide text_config.hidden_size",
            ),
            (
                v.hidden_size.is_multiple_of(v.num_attention_heads.max(1))
                    && v.num_attention_heads > 0,
                "vision_config.num_attention_heads must divide vision_config.hidden_size",
            ),
            (
                v.patch_size > 0 && v.image_size.is_multiple_of(v.patch_size.max(1)),
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
                return Err(ClipConfigError::Unsupported(message));
            }
        }
        Ok(())
    }
}
