//! The embed stage: loads a CLIP checkpoint and turns preprocessed pixels and text into
//! L2-normalised vectors in one shared space.
//!
//! The files follow the model's data path: `config` (a checkpoint's `config.json`), `layers`
//! (what both towers are built of, on the fused CPU `kernels`), the `text` and `vision`
//! towers, and `clip` (both towers of one checkpoint). `device` says where and in what
//! precision the model runs, `preprocess` turns images into the vision tower's pixels, and
//! [`Embedder`] (here) loads a checkpoint folder for the rest of frameseek.

pub mod clip;
pub mod config;
pub mod device;
mod identity;
pub mod int8;
pub mod kernels;
mod layers;
pub mod preprocess;
pub mod text;
pub mod views;
pub mod vision;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use tokenizers::Tokenizer;

pub use self::config::{Activation, ClipConfig, ClipConfigError, TextConfig, VisionConfig};
pub use clip::{l2_normalise, ClipModel};
pub use device::{
    activation_bytes_per_image, auto_batch_size, init_quantised_threads, DeviceChoice, DeviceError,
    ImagePrecision, Precision, TextPrecision, CPU_AUTO_BATCH, CPU_MICRO_BATCH,
    GPU_AUTO_BATCH_BYTES, GPU_AUTO_BATCH_MAX,
};
pub use identity::ModelIdentity;
pub use preprocess::{ImageInputError, PixelGeometry, PreprocessorConfigError};
pub use text::TextTower;
pub use views::{Region, ViewCut, ViewSet, MAX_VIEWS};
use vision::LazyVision;
pub use vision::VisionTower;

/// Errors of the embed stage.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The model folder is missing, incomplete or inconsistent.
    #[error("model {path}: {message}")]
    Model {
        /// Folder or hub id as configured.
        path: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// Input the model cannot take (empty text, undecodable image); the daemon answers it
    /// with the `bad_image` error code for an image.
    #[error("{0}")]
    Input(String),
    /// The configured device cannot be used.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// The tensor computation failed.
    #[error("inference failed: {0}")]
    Compute(#[from] candle_core::Error),
}

/// A loaded CLIP checkpoint: model, tokenizer and pixel geometry. The image tower of a
/// `model.safetensors` checkpoint is built when the first image is embedded (its weights'
/// names and shapes are checked at load), so a process that only embeds text never holds it.
pub struct Embedder {
    text: TextTower,
    vision: LazyVision,
    logit_scale: f32,
    tokenizer: Tokenizer,
    device: Device,
    dtype: DType,
    geometry: PixelGeometry,
    identity: ModelIdentity,
    vision_config: VisionConfig,
    cpu_micro_batch: usize,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("identity", &self.identity)
            .field("device", &self.device)
            .finish()
    }
}

fn model_error(path: &str, message: impl Into<String>) -> EmbedError {
    EmbedError::Model {
        path: path.to_string(),
        message: message.into(),
    }
}

/// Resolves a configured model to a local folder. Hub ids need a local copy on machines
/// without network access.
pub fn resolve_model_folder(spec: &str) -> Result<PathBuf, EmbedError> {
    let path = Path::new(spec);
    if path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let looks_like_hub_id =
        !spec.starts_with('/') && !spec.starts_with('.') && spec.split('/').count() == 2;
    if looks_like_hub_id {
        let cache = std::env::var_os("HF_HOME")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/huggingface"))
            })
            .map(|h| {
                h.join("hub")
                    .join(format!("models--{}", spec.replace('/', "--")))
                    .join("snapshots")
            });
        if let Some(snapshots) = cache {
            if let Ok(entries) = std::fs::read_dir(&snapshots) {
                for e in entries.flatten() {
                    if e.path().join("config.json").is_file() {
                        return Ok(e.path());
                    }
                }
            }
        }
        return Err(model_error(
            spec,
            "is a hub id with no local copy; download it on a machine with network access (e.g. `huggingface-cli download openai/clip-vit-base-patch32`) and set model.path to that folder",
        ));
    }
    Err(model_error(spec, "no such folder; set model.path to a folder holding config.json, model.safetensors, tokenizer.json and preprocessor_config.json"))
}

impl Embedder {
    /// Loads a Hugging Face CLIP folder (or hub id with a local copy) onto `device`, in
    /// f16 on a GPU and f32 on the CPU.
    pub fn load(spec: &str, device: DeviceChoice) -> Result<Self, EmbedError> {
        Self::load_with(spec, device, Precision::Auto)
    }

    /// Like [`Embedder::load`], with a chosen [`Precision`].
    pub fn load_with(
        spec: &str,
        device: DeviceChoice,
        precision: Precision,
    ) -> Result<Self, EmbedError> {
        Self::load_with_text(spec, device, precision, precision)
    }

    /// Like [`Embedder::load_with`], with the text tower's linear layers in `text_precision`:
    /// [`TextPrecision::Int8`] (or [`Precision::Int8`]) quantises them on the CPU (a query's
    /// few tokens make its matrix products memory-bound, so 8-bit weights cut its latency;
    /// see BENCHMARKS.md), [`TextPrecision::F32`] (or any other precision) leaves the text
    /// tower in `precision`.
    pub fn load_with_text(
        spec: &str,
        device: DeviceChoice,
        precision: Precision,
        text_precision: impl Into<TextPrecision>,
    ) -> Result<Self, EmbedError> {
        let identity = ModelIdentity::read(spec, None)?;
        Self::load_identified(identity, device, precision, text_precision)
    }

    /// Like [`Embedder::load_with_text`], for the model `identity` names: its digest is
    /// taken as read (so it can come from [`ModelIdentity::read`]'s cache), not computed
    /// again.
    pub fn load_identified(
        identity: ModelIdentity,
        device: DeviceChoice,
        precision: Precision,
        text_precision: impl Into<TextPrecision>,
    ) -> Result<Self, EmbedError> {
        let spec = identity.id.as_str();
        let folder = resolve_model_folder(spec)?;
        let read = |name: &str| {
            std::fs::read_to_string(folder.join(name))
                .map_err(|e| model_error(spec, format!("cannot read {name}: {e}")))
        };
        let config = ClipConfig::from_json(&read("config.json")?)
            .map_err(|e| model_error(spec, format!("config.json: {e}")))?;
        let image_size = config.vision_config.image_size;
        let geometry = match read("preprocessor_config.json") {
            Ok(text) => PixelGeometry::from_preprocessor_json(&text, image_size)
                .map_err(|e| model_error(spec, e.to_string()))?,
            Err(_) => PixelGeometry::clip_default(image_size),
        };
        let mut tokenizer = Tokenizer::from_file(folder.join("tokenizer.json"))
            .map_err(|e| model_error(spec, format!("tokenizer.json: {e}")))?;
        tokenizer
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length: config.text_config.max_position_embeddings,
                ..Default::default()
            }))
            .map_err(|e| model_error(spec, format!("tokenizer truncation: {e}")))?;
        tokenizer.with_padding(None);
        let device = device.open()?;
        let precision = precision.on(&device);
        let dtype = precision.dtype_for(&device);
        let (weights, name) = identity::weights_file(&folder);
        let vb = open_weights(&weights, name, spec, dtype, &device)?;
        let (text, logit_scale) =
            clip::load_text(vb.clone(), &config, precision, text_precision.into())
                .map_err(|e| model_error(spec, format!("weights do not match config.json: {e}")))?;
        let vision = if name == "model.safetensors" {
            check_vision_weights(&weights, &config, spec)?;
            let stamp = file_stamp(&weights);
            let (spec, config, device) = (spec.to_string(), config.clone(), device.clone());
            LazyVision::deferred(Box::new(move || {
                let started = std::time::Instant::now();
                if file_stamp(&weights) != stamp {
                    return Err(model_error(&spec, "model.safetensors changed since the model loaded, so its image tower may not match its text tower; restart the daemon"));
                }
                let vb = open_weights(&weights, name, &spec, dtype, &device)?;
                let tower = clip::load_vision(vb, &config, precision).map_err(|e| {
                    model_error(
                        &spec,
                        format!("image tower: weights do not match config.json: {e}"),
                    )
                })?;
                device.synchronize()?;
                // Building freed the float32 copies of the quantised weights in this
                // thread's malloc arena; hand those pages back.
                // SAFETY: malloc_trim only releases free memory; it is safe to call at any time.
                unsafe { libc::malloc_trim(0) };
                tracing::info!(model = %spec, load_ms = started.elapsed().as_millis() as u64, "image tower loaded");
                Ok(tower)
            }))
        } else {
            // A pickled checkpoint has no header to check the weights against, and reading
            // it again costs as much as loading: its image tower loads now.
            LazyVision::built(
                clip::load_vision(vb, &config, precision).map_err(|e| {
                    model_error(spec, format!("weights do not match config.json: {e}"))
                })?,
            )
        };
        if config.projection_dim != identity.dim {
            return Err(model_error(spec, format!("config.json changed while the model was loading (dim {} was read first, then {})", identity.dim, config.projection_dim)));
        }
        // issue 9: candle's CUDA device uses per-thread streams; the weights must have landed
        // before another thread (ingest, queries) computes with them.
        device.synchronize()?;
        Ok(Self {
            text,
            vision,
            logit_scale,
            tokenizer,
            device,
            dtype,
            geometry,
            identity,
            vision_config: config.vision_config.clone(),
            cpu_micro_batch: CPU_MICRO_BATCH,
        })
    }

    /// The model's identity for the store.
    pub fn identity(&self) -> &ModelIdentity {
        &self.identity
    }

    /// Embedding dimension.
    pub fn dim(&self) -> usize {
        self.identity.dim
    }

    /// Sets how many images one image-tower pass takes on the CPU (default
    /// [`CPU_MICRO_BATCH`]); `usize::MAX` runs every call as one batch.
    pub fn set_cpu_micro_batch(&mut self, images: usize) {
        self.cpu_micro_batch = images.max(1);
    }

    /// `exp(logit_scale)` of the checkpoint: the factor CLIP multiplies cosine similarities
    /// by before a softmax over candidates (1.0 when the checkpoint has none).
    pub fn logit_scale(&self) -> f32 {
        self.logit_scale
    }

    /// Builds the image tower now if it was not yet (it is otherwise built by the first
    /// image embedded): a check that the whole model loads.
    pub fn load_image_tower(&self) -> Result<(), EmbedError> {
        self.vision.get().map(|_| ())
    }

    /// Whether the image tower has been built (see [`Embedder::load_image_tower`]).
    pub fn image_tower_loaded(&self) -> bool {
        self.vision.is_built()
    }

    /// The pixel geometry frames must be converted to.
    pub fn geometry(&self) -> &PixelGeometry {
        &self.geometry
    }

    /// A short description of the device, for logs.
    pub fn device_name(&self) -> String {
        match &self.device {
            Device::Cpu => "cpu".into(),
            Device::Cuda(_) => "cuda".into(),
            Device::Metal(_) => "metal".into(),
        }
    }

    /// Token ids for one text, truncated to the model's length with the end token kept.
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, EmbedError> {
        let enc = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| EmbedError::Input(format!("cannot tokenize: {e}")))?;
        let mut ids = enc.get_ids().to_vec();
        let max = self.text.max_len();
        if ids.len() > max {
            let last = *ids.last().unwrap_or(&0);
            ids.truncate(max);
            ids[max - 1] = last;
        }
        Ok(ids)
    }

    /// L2-normalised text embeddings, one per text, in order.
    pub fn embed_texts(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let mut ids = Vec::with_capacity(texts.len());
        for t in texts {
            if t.trim().is_empty() {
                return Err(EmbedError::Input("query text is empty".into()));
            }
            ids.push(self.tokenize(t)?);
        }
        // Pad with the last (end) token: the causal mask keeps padding out of the pooled token.
        let len = ids.iter().map(Vec::len).max().unwrap_or(0);
        for seq in &mut ids {
            let pad = *seq.last().unwrap_or(&0);
            seq.resize(len, pad);
        }
        let features = self.text.forward(&ids, &self.device)?;
        rows(&l2_normalise(&features.to_dtype(DType::F32)?)?)
    }

    /// L2-normalised image embeddings for `count` preprocessed images laid out back to back
    /// as produced by [`PixelGeometry`].
    pub fn embed_pixels(&self, pixels: &[f32], count: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let input = self.upload_pixels(pixels, count)?;
        self.embed_uploaded(&input)
    }

    /// Embeds one still image given as PNG or JPEG bytes.
    pub fn embed_image_bytes(&self, bytes: &[u8]) -> Result<Vec<f32>, EmbedError> {
        let mut pixels = Vec::with_capacity(self.geometry.values_per_image());
        self.geometry
            .preprocess_image_bytes(bytes, &mut pixels)
            .map_err(|e| EmbedError::Input(e.to_string()))?;
        Ok(self.embed_pixels(&pixels, 1)?.remove(0))
    }
}

impl Embedder {
    /// The dtype the model runs in.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The device the model runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// `configured` frames per batch, or the automatic choice when it is 0.
    pub fn batch_size(&self, configured: usize) -> usize {
        if configured > 0 {
            configured
        } else {
            auto_batch_size(&self.vision_config, &self.device, self.dtype)
        }
    }

    /// Copies `count` preprocessed images to the device in the model's dtype. On a GPU this
    /// waits for the copy (on the calling thread's stream), so the tensor can be handed to
    /// another thread: one thread can upload batch N+1 while another computes batch N.
    pub fn upload_pixels(&self, pixels: &[f32], count: usize) -> Result<Tensor, EmbedError> {
        let c = self.check_pixel_count(pixels.len(), count)?;
        // On the CPU, larger batches run as consecutive micro-batches: measured on ViT-B/32,
        // 8 images at a time keep the activations cache-resident and give about 10 % more
        // images per second than one batch of 32 (BENCHMARKS.md). `upload_pixels` then only
        // wraps the pixels; `embed_uploaded` splits them.
        let input =
            Tensor::from_slice(pixels, (count, 3, c, c), &self.device)?.to_dtype(self.dtype)?;
        if self.device.is_cuda() {
            self.device.synchronize()?;
        }
        Ok(input)
    }

    /// The crop side, after checking that `values` pixel values hold `count` images.
    fn check_pixel_count(&self, values: usize, count: usize) -> Result<usize, EmbedError> {
        let c = self.geometry.crop;
        if values != count * 3 * c * c {
            return Err(EmbedError::Input(format!(
                "expected {} pixel values, got {values}",
                count * 3 * c * c
            )));
        }
        Ok(c)
    }

    /// Like [`Embedder::upload_pixels`], taking the buffer: on the CPU in float32 the tensor
    /// takes it over without a copy.
    pub fn upload_pixel_vec(&self, pixels: Vec<f32>, count: usize) -> Result<Tensor, EmbedError> {
        if !(self.device.is_cpu() && self.dtype == DType::F32) {
            return self.upload_pixels(&pixels, count);
        }
        let c = self.check_pixel_count(pixels.len(), count)?;
        Ok(Tensor::from_vec(pixels, (count, 3, c, c), &self.device)?)
    }

    /// Images per image-tower pass on the CPU (see [`Embedder::set_cpu_micro_batch`]).
    pub fn cpu_micro_batch(&self) -> usize {
        self.cpu_micro_batch
    }

    /// L2-normalised embeddings of images already on the device ([`Embedder::upload_pixels`]).
    pub fn embed_uploaded(&self, input: &Tensor) -> Result<Vec<Vec<f32>>, EmbedError> {
        if input.dim(0)? == 0 {
            return Ok(Vec::new());
        }
        let count = input.dim(0)?;
        let step = if self.device.is_cpu() {
            self.cpu_micro_batch.max(1)
        } else {
            count
        };
        let vision = self.vision.get()?;
        let mut out = Vec::with_capacity(count);
        let mut start = 0;
        while start < count {
            let n = step.min(count - start);
            let features = vision.forward(&input.narrow(0, start, n)?)?;
            out.extend(rows(&l2_normalise(&features.to_dtype(DType::F32)?)?)?);
            start += n;
        }
        Ok(out)
    }

    /// A vision-only embedder with random weights for throughput measurements (no tokenizer
    /// use: text calls fail). `config_json` is a Hugging Face CLIP `config.json`.
    pub fn random(
        config_json: &str,
        device: DeviceChoice,
        precision: Precision,
    ) -> Result<Self, EmbedError> {
        let spec = "random";
        let config: ClipConfig = serde_json::from_str(config_json)
            .map_err(|e| model_error(spec, format!("config.json: {e}")))?;
        config
            .validate()
            .map_err(|e| model_error(spec, format!("config.json: {e}")))?;
        let device = device.open()?;
        let precision = precision.on(&device);
        let dtype = precision.dtype_for(&device);
        let varmap = candle_nn::VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, dtype, &device);
        // A first build declares every weight in `varmap` (zeros); the model keeps derived
        // copies (pre-transposed matrices), so it is built again once the values are set.
        drop(ClipModel::new(
            vb.clone(),
            &config,
            precision,
            precision.into(),
        )?);
        // Small random weights everywhere except layer-norm scales (1): realistic magnitudes,
        // no overflow in f16.
        for (name, var) in varmap.data().lock().expect("varmap lock").iter() {
            let shape = var.shape().clone();
            let value = if shape.rank() == 1 && name.ends_with("weight") {
                Tensor::ones(shape, dtype, &device)?
            } else {
                Tensor::randn(0f32, 0.02, shape, &device)?.to_dtype(dtype)?
            };
            var.set(&value)?;
        }
        let model = ClipModel::new(vb, &config, precision, precision.into())?;
        device.synchronize()?;
        let ClipModel {
            text,
            vision,
            logit_scale,
        } = model;
        let tokenizer = Tokenizer::new(tokenizers::models::bpe::BPE::default());
        let image_size = config.vision_config.image_size;
        Ok(Self {
            text,
            vision: LazyVision::built(vision),
            logit_scale,
            tokenizer,
            device,
            dtype,
            geometry: PixelGeometry::clip_default(image_size),
            identity: ModelIdentity {
                id: spec.into(),
                dim: config.projection_dim,
                digest: String::new(),
            },
            vision_config: config.vision_config.clone(),
            cpu_micro_batch: CPU_MICRO_BATCH,
        })
    }
}

/// The checkpoint's weights for building towers: `model.safetensors` memory-mapped, or a
/// pickled `pytorch_model.bin` read.
fn open_weights(
    weights: &Path,
    name: &str,
    spec: &str,
    dtype: DType,
    device: &Device,
) -> Result<VarBuilder<'static>, EmbedError> {
    if name == "model.safetensors" {
        // SAFETY: the file is memory-mapped read-only; frameseek never writes model files.
        unsafe { VarBuilder::from_mmaped_safetensors(&[weights], dtype, device) }
    } else {
        VarBuilder::from_pth(weights, dtype, device)
    }
    .map_err(|e| model_error(spec, format!("{name}: {e}")))
}

/// The size and modification time of a file (`None` if it cannot be read), to see that the
/// weights the image tower is built from are the ones the text tower was.
fn file_stamp(path: &Path) -> Option<(u64, std::time::SystemTime)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

/// Checks that `model.safetensors` holds every image-tower weight `config` asks for, with
/// its shape, from the file's header alone: a checkpoint whose image tower cannot load is
/// refused at load, although the tower itself is built on first use.
fn check_vision_weights(weights: &Path, config: &ClipConfig, spec: &str) -> Result<(), EmbedError> {
    // SAFETY: the file is memory-mapped read-only; frameseek never writes model files.
    let file = unsafe { candle_core::safetensors::MmapedSafetensors::new(weights) }
        .map_err(|e| model_error(spec, format!("model.safetensors: {e}")))?;
    for (name, shape) in vision::expected_weights(&config.vision_config, config.projection_dim) {
        let found = file.get(&name).map_err(|_| {
            model_error(spec, format!("weights do not match config.json: model.safetensors has no {name} (the image tower's)"))
        })?;
        if found.shape() != shape.as_slice() {
            return Err(model_error(spec, format!("weights do not match config.json: {name} is {:?} in model.safetensors, config.json asks for {shape:?}", found.shape())));
        }
    }
    Ok(())
}

fn rows(t: &Tensor) -> Result<Vec<Vec<f32>>, EmbedError> {
    Ok(t.to_dtype(DType::F32)?.to_vec2::<f32>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_model_folder_says_what_to_do() {
        let e = resolve_model_folder("/nonexistent/model")
            .unwrap_err()
            .to_string();
        assert!(e.contains("config.json"), "{e}");
        let e = resolve_model_folder("someorg/some-model-that-is-not-cached")
            .unwrap_err()
            .to_string();
        assert!(e.contains("hub id"), "{e}");
    }

    fn tiny_model() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/models/tiny-random-clip")
    }

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        dot / (norm(a) * norm(b))
    }

    #[test]
    fn the_expected_image_weights_are_the_ones_the_tower_reads() {
        let config = ClipConfig::from_json(
            &std::fs::read_to_string(tiny_model().join("config.json")).unwrap(),
        )
        .unwrap();
        let varmap = candle_nn::VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        clip::load_vision(vb, &config, Precision::F32).unwrap();
        let mut read: Vec<(String, Vec<usize>)> = varmap
            .data()
            .lock()
            .unwrap()
            .iter()
            .map(|(name, var)| (name.clone(), var.dims().to_vec()))
            .collect();
        let mut expected = vision::expected_weights(&config.vision_config, config.projection_dim);
        read.sort();
        expected.sort();
        assert_eq!(read, expected);
    }

    #[test]
    fn the_image_tower_loads_on_first_use() {
        let model = tiny_model();
        let embedder = Embedder::load(model.to_str().unwrap(), DeviceChoice::Cpu).unwrap();
        assert!(!embedder.image_tower_loaded());
        embedder.embed_texts(&["a red car"]).unwrap();
        assert!(
            !embedder.image_tower_loaded(),
            "text alone needs no image tower"
        );
        let pixels = vec![0.1f32; embedder.geometry().values_per_image()];
        let vectors = embedder.embed_pixels(&pixels, 1).unwrap();
        assert!(embedder.image_tower_loaded());
        assert_eq!(vectors[0].len(), embedder.dim());
        // Built ahead of use (as `doctor` does), the tower gives the same vector.
        let eager = Embedder::load(model.to_str().unwrap(), DeviceChoice::Cpu).unwrap();
        eager.load_image_tower().unwrap();
        assert!(cosine(&eager.embed_pixels(&pixels, 1).unwrap()[0], &vectors[0]) > 0.99999);
    }

    #[test]
    fn a_checkpoint_without_its_image_tower_is_refused_at_load() {
        let model = tiny_model();
        let dir = tempfile::tempdir().unwrap();
        for f in ["config.json", "preprocessor_config.json", "tokenizer.json"] {
            std::fs::copy(model.join(f), dir.path().join(f)).unwrap();
        }
        let mut tensors =
            candle_core::safetensors::load(model.join("model.safetensors"), &Device::Cpu).unwrap();
        let dropped = "vision_model.encoder.layers.1.mlp.fc2.weight";
        assert!(tensors.remove(dropped).is_some());
        candle_core::safetensors::save(&tensors, dir.path().join("model.safetensors")).unwrap();
        let e = Embedder::load(dir.path().to_str().unwrap(), DeviceChoice::Cpu)
            .unwrap_err()
            .to_string();
        assert!(e.contains(dropped) && e.contains("image tower"), "{e}");
    }

    #[test]
    fn a_compact_token_table_keeps_text_embeddings_of_a_float32_one() {
        for (text_precision, kind, bar) in [
            (TextPrecision::F32, "f16", 0.9999),
            (TextPrecision::Int8, "int8", 0.999),
        ] {
            let model = tiny_model();
            let embedder = Embedder::load_with_text(
                model.to_str().unwrap(),
                DeviceChoice::Cpu,
                Precision::F32,
                text_precision,
            )
            .unwrap();
            assert_eq!(embedder.text.token_table_kind(), kind);
            let vb = open_weights(
                &model.join("model.safetensors"),
                "model.safetensors",
                "tiny",
                DType::F32,
                &Device::Cpu,
            )
            .unwrap();
            let table = vb
                .pp("text_model.embeddings.token_embedding")
                .get_unchecked("weight")
                .unwrap();
            let wide = embedder.text.clone().with_token_table(table);
            let mut worst = 1f32;
            for text in [
                "a red car",
                "a person walking a dog at night",
                "white van",
                "x",
            ] {
                let ids = vec![embedder.tokenize(text).unwrap()];
                let narrow = embedder.text.forward(&ids, &Device::Cpu).unwrap();
                let full = wide.forward(&ids, &Device::Cpu).unwrap();
                let (a, b) = (rows(&narrow).unwrap(), rows(&full).unwrap());
                worst = worst.min(cosine(&a[0], &b[0]));
            }
            eprintln!("{kind} token table: min cosine {worst} to float32");
            assert!(worst >= bar, "{text_precision:?}: cosine {worst}");
        }
    }
}
