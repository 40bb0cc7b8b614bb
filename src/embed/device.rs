//! Where and in what number format the model runs: the device setting (`model.device`), the
//! precisions, the threads of candle's 8-bit products, and the batch sizes chosen for a
//! device.

use candle_core::{DType, Device};

use super::config::VisionConfig;

/// Errors of the device and precision settings.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// A device setting in none of the accepted forms (the value as written).
    #[error("unknown device {0:?}; expected auto, cpu or cuda:N (N: the CUDA device number)")]
    UnknownDevice(String),
    /// A precision none of the accepted names (the value as written).
    #[error("unknown precision {0:?}; expected auto, f32, f16, bf16 or int8")]
    UnknownPrecision(String),
    /// A text-tower precision none of the accepted names (the value as written).
    #[error("unknown text precision {0:?}; expected f32 or int8")]
    UnknownTextPrecision(String),
    /// CUDA device N was asked of a build without CUDA.
    #[error("model.device = cuda:{0}, but this frameseek was built without CUDA; rebuild with `cargo build --release --features cuda` or set model.device = \"cpu\"")]
    NoCudaBuild(usize),
    /// CUDA device N did not open.
    #[error("cannot open cuda:{device}: {error}")]
    CudaOpen {
        /// The device number.
        device: usize,
        /// candle's reason.
        error: candle_core::Error,
    },
}

/// Where the model runs, as configured (`model.device`; deserialised from `auto`, `cpu` or
/// `cuda:N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum DeviceChoice {
    /// CUDA device 0 when this build has CUDA and a GPU answers, else the CPU.
    Auto,
    /// The CPU.
    Cpu,
    /// CUDA device N.
    Cuda(usize),
}

impl DeviceChoice {
    /// Parses `auto`, `cpu` or `cuda:N` (`cuda` alone is `cuda:0`).
    pub fn parse(text: &str) -> Result<Self, DeviceError> {
        match text {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(n)) => Ok(Self::Cuda(n)),
                _ => Err(DeviceError::UnknownDevice(text.to_string())),
            },
        }
    }

    /// Opens the device, with a clear error when CUDA is asked of a build without it.
    pub fn open(self) -> Result<Device, DeviceError> {
        match self {
            Self::Cpu => Ok(Device::Cpu),
            Self::Auto => {
                // issue 9: say which device `auto` picked and why.
                if !cfg!(feature = "cuda") {
                    tracing::info!("model.device = auto: this build has no CUDA, using the CPU");
                    Ok(Device::Cpu)
                } else if !candle_core::utils::cuda_is_available() {
                    tracing::info!("model.device = auto: CUDA unavailable, using the CPU");
                    Ok(Device::Cpu)
                } else {
                    match Device::new_cuda(0) {
                        Ok(d) => {
                            tracing::info!("model.device = auto: using cuda:0");
                            Ok(d)
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "model.device = auto: cuda:0 did not open, using the CPU");
                            Ok(Device::Cpu)
                        }
                    }
                }
            }
            Self::Cuda(n) => {
                if !cfg!(feature = "cuda") {
                    return Err(DeviceError::NoCudaBuild(n));
                }
                Device::new_cuda(n).map_err(|error| DeviceError::CudaOpen { device: n, error })
            }
        }
    }
}

/// For serde: an invalid value is a deserialisation error listing the accepted forms.
impl TryFrom<String> for DeviceChoice {
    type Error = DeviceError;

    fn try_from(text: String) -> Result<Self, DeviceError> {
        Self::parse(&text)
    }
}

/// The numeric precision the model runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// f16 on a GPU, f32 on the CPU.
    #[default]
    Auto,
    /// f32 everywhere (the reference).
    F32,
    /// f16 (slow on the CPU, but it works there: used to test the GPU's numerics).
    F16,
    /// bf16.
    Bf16,
    /// 8-bit linear layers on the CPU: in the image tower per-output-channel int8 weights
    /// with per-token int8 activations (`embed::int8`, on VNNI where the CPU has it),
    /// in the text tower candle's `Q8_0` blocks. Everything else stays float32. On a GPU
    /// the model runs as [`Precision::Auto`].
    Int8,
}

impl Precision {
    /// Parses `auto`, `f32`, `f16`, `bf16` or `int8`.
    pub fn parse(text: &str) -> Result<Self, DeviceError> {
        match text {
            "auto" => Ok(Self::Auto),
            "f32" => Ok(Self::F32),
            "f16" => Ok(Self::F16),
            "bf16" => Ok(Self::Bf16),
            "int8" => Ok(Self::Int8),
            _ => Err(DeviceError::UnknownPrecision(text.to_string())),
        }
    }

    /// The precision in force on `device`: [`Precision::Int8`] is a CPU format, so on a GPU
    /// it is [`Precision::Auto`].
    pub fn on(self, device: &Device) -> Self {
        match self {
            Self::Int8 if !device.is_cpu() => Self::Auto,
            other => other,
        }
    }

    /// The dtype of weights and activations on `device`.
    pub fn dtype_for(self, device: &Device) -> DType {
        match self {
            Self::Auto if device.is_cuda() => DType::F16,
            Self::Auto | Self::F32 | Self::Int8 => DType::F32,
            Self::F16 => DType::F16,
            Self::Bf16 => DType::BF16,
        }
    }
}

/// The text tower's linear-layer weights (`model.text_precision`; deserialised from `f32` or
/// `int8`, as a string so that a wrong value's error lists the accepted ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum TextPrecision {
    /// Unquantised, in the model's precision (f32 on the CPU: the reference).
    F32,
    /// 8-bit blocks (candle's `Q8_0`) on the CPU (the default; a GPU ignores it): a query's
    /// few tokens make the products memory-bound, so this cuts its latency and a quarter of
    /// the tower's memory, at cosine ≥ 0.999 to f32 (BENCHMARKS.md).
    #[default]
    Int8,
}

impl TextPrecision {
    /// Parses `f32` or `int8`.
    pub fn parse(text: &str) -> Result<Self, DeviceError> {
        match text {
            "f32" => Ok(Self::F32),
            "int8" => Ok(Self::Int8),
            _ => Err(DeviceError::UnknownTextPrecision(text.to_string())),
        }
    }
}

/// For serde: an invalid value is a deserialisation error listing the accepted names.
impl TryFrom<String> for TextPrecision {
    type Error = DeviceError;

    fn try_from(text: String) -> Result<Self, DeviceError> {
        Self::parse(&text)
    }
}

/// The image tower's linear layers on the CPU (`model.image_precision`; deserialised from
/// `int8` or `f32`). Ignored on a GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum ImagePrecision {
    /// Per-channel int8 weights and per-token int8 activations, on VNNI (AVX-512 VNNI or
    /// AVX-VNNI): about 1.8× the images per second of f32 at cosine ≥ 0.999 to it
    /// (BENCHMARKS.md, issue 20).
    /// On a CPU without either, the image tower runs in f32 (the portable integer loop is
    /// slower than f32's products).
    #[default]
    Int8,
    /// float32 (the reference).
    F32,
}

crate::setting::named_setting!(ImagePrecision, "int8 or f32", { "int8" => Int8, "f32" => F32 });

impl ImagePrecision {
    /// The model [`Precision`] for this setting on this CPU: [`Precision::Int8`] for `int8`
    /// where the CPU has VNNI (AVX-512 VNNI or AVX-VNNI), else [`Precision::Auto`] (f32 on
    /// the CPU, f16 on a GPU).
    pub fn precision(self) -> Precision {
        match self {
            Self::Int8 if super::int8::has_vnni() => Precision::Int8,
            Self::Int8 => {
                tracing::info!("model.image_precision = int8: this CPU has neither AVX-512 VNNI nor AVX-VNNI, the image tower runs in f32");
                Precision::Auto
            }
            Self::F32 => Precision::Auto,
        }
    }
}

/// [`Precision::Int8`] quantises the text tower; every other precision leaves it
/// unquantised, in the model's precision.
impl From<Precision> for TextPrecision {
    fn from(precision: Precision) -> Self {
        match precision {
            Precision::Int8 => Self::Int8,
            _ => Self::F32,
        }
    }
}

/// Makes candle's 8-bit matrix products (the `int8` precisions) run on the calling thread
/// unless `CANDLE_NUM_THREADS` says otherwise. Call at the start of `main`, before any other
/// thread exists (it sets an environment variable).
///
/// candle runs those products on a pool of spinning worker threads sized by
/// `CANDLE_NUM_THREADS`, else `RAYON_NUM_THREADS`, else the cores. On a busy machine the spinning
/// workers wait for each other at every barrier: a 12-token text query with int8 weights took
/// 111 ms p50 on 2 such threads and 14 ms on one (BENCHMARKS.md, issue 8). Float32 products
/// (gemm on rayon) are not affected.
pub fn init_quantised_threads() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
}

/// Images per forward pass of the image tower on the CPU (`Embedder::embed_pixels` runs
/// larger batches as consecutive passes of this many).
pub const CPU_MICRO_BATCH: usize = 8;

/// Frames per forward pass when `model.batch_size = 0` (auto) on the CPU.
pub const CPU_AUTO_BATCH: usize = 32;
/// The largest automatic batch on a GPU; beyond it throughput no longer grows.
pub const GPU_AUTO_BATCH_MAX: usize = 256;
/// Activation memory the automatic GPU batch may use (fits any card with 8 GB beside the
/// weights of a ViT-L/14).
pub const GPU_AUTO_BATCH_BYTES: usize = 4 << 30;

/// Rough peak activation bytes of one image in the vision tower: the residual stream and
/// its copies, the MLP's hidden layer and one head-batched attention matrix, at `elem` bytes.
pub fn activation_bytes_per_image(vision: &VisionConfig, elem: usize) -> usize {
    let tokens = (vision.image_size / vision.patch_size).pow(2) + 1;
    let residual = tokens * vision.hidden_size * 6;
    let mlp = tokens * vision.intermediate_size * 2;
    let attention = vision.num_attention_heads * tokens * tokens * 2;
    (residual + mlp + attention) * elem
}

/// The automatic batch: [`CPU_AUTO_BATCH`] on the CPU; on a GPU the largest power of two up
/// to [`GPU_AUTO_BATCH_MAX`] whose estimated activations fit [`GPU_AUTO_BATCH_BYTES`].
pub fn auto_batch_size(vision: &VisionConfig, device: &Device, dtype: DType) -> usize {
    if !device.is_cuda() {
        return CPU_AUTO_BATCH;
    }
    let per_image = activation_bytes_per_image(vision, dtype.size_in_bytes()).max(1);
    let mut batch = GPU_AUTO_BATCH_MAX;
    while batch > 1 && batch * per_image > GPU_AUTO_BATCH_BYTES {
        batch /= 2;
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_choice_parses() {
        assert_eq!(DeviceChoice::parse("auto").unwrap(), DeviceChoice::Auto);
        assert_eq!(DeviceChoice::parse("cpu").unwrap(), DeviceChoice::Cpu);
        assert_eq!(
            DeviceChoice::parse("cuda:1").unwrap(),
            DeviceChoice::Cuda(1)
        );
        assert!(DeviceChoice::parse("cuda:x").is_err());
        assert!(DeviceChoice::parse("gpu").is_err());
    }

    #[test]
    fn settings_deserialise_and_list_the_accepted_forms() {
        let device: DeviceChoice = serde_json::from_str("\"cuda:2\"").unwrap();
        assert_eq!(device, DeviceChoice::Cuda(2));
        let e = serde_json::from_str::<DeviceChoice>("\"gpu\"").unwrap_err();
        assert!(e.to_string().contains("auto, cpu or cuda:N"), "{e}");
        let text: TextPrecision = serde_json::from_str("\"int8\"").unwrap();
        assert_eq!(text, TextPrecision::Int8);
        let e = serde_json::from_str::<TextPrecision>("\"int4\"").unwrap_err();
        assert!(e.to_string().contains("f32 or int8"), "{e}");
        assert_eq!(TextPrecision::from(Precision::Int8), TextPrecision::Int8);
        assert_eq!(TextPrecision::from(Precision::F16), TextPrecision::F32);
        let image: ImagePrecision = serde_json::from_str("\"f32\"").unwrap();
        assert_eq!(image, ImagePrecision::F32);
        assert_eq!(image.precision(), Precision::Auto);
        assert_eq!(ImagePrecision::default(), ImagePrecision::Int8);
        let e = serde_json::from_str::<ImagePrecision>("\"int4\"").unwrap_err();
        assert!(e.to_string().contains("int8 or f32"), "{e}");
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_is_a_clear_error() {
        let e = DeviceChoice::Cuda(0).open().unwrap_err().to_string();
        assert!(e.contains("--features cuda"), "{e}");
    }
}
