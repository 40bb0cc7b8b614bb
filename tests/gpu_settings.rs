//! Issue 9, the parts of the GPU path that run on the CPU: precision choice, automatic batch
//! size, f16 numerics (the same kernels' logic as on the GPU, at CPU speed), the
//! upload/compute split the pipeline overlaps, and random-weight models for benchmarks.

use candle_core::{DType, Device};
use frameseek::embed::{
    activation_bytes_per_image, auto_batch_size, DeviceChoice, Embedder, Precision, VisionConfig,
};

fn fixture() -> String {
    format!(
        "{}/assets/models/tiny-random-clip",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

fn vision(json: &str) -> VisionConfig {
    serde_json::from_str(json).unwrap()
}

#[test]
fn precision_parses_and_follows_the_device() {
    assert_eq!(Precision::parse("auto").unwrap(), Precision::Auto);
    assert_eq!(Precision::parse("f16").unwrap(), Precision::F16);
    assert_eq!(Precision::parse("bf16").unwrap(), Precision::Bf16);
    assert!(Precision::parse("fp8").is_err());
    assert_eq!(Precision::Auto.dtype_for(&Device::Cpu), DType::F32);
    assert_eq!(Precision::F16.dtype_for(&Device::Cpu), DType::F16);
}

#[test]
fn automatic_batch_is_32_on_the_cpu_and_sized_by_memory_on_a_gpu() {
    let l14 = vision(
        r#"{"hidden_size":1024,"intermediate_size":4096,"num_hidden_layers":24,
            "num_attention_heads":16,"num_channels":3,"image_size":224,"patch_size":14,
            "hidden_act":"quick_gelu","layer_norm_eps":1e-5}"#,
    );
    assert_eq!(auto_batch_size(&l14, &Device::Cpu, DType::F32), 32);
    // ViT-L/14 in f16: about 12 MB of activations per image, 256 fit in 4 GiB.
    let per = activation_bytes_per_image(&l14, 2);
    assert!((8 << 20..16 << 20).contains(&per), "{per}");
    assert!(256 * per <= frameseek::embed::GPU_AUTO_BATCH_BYTES);
    // A much larger input (448 px, patch 14: 1025 tokens) gets a smaller batch.
    let big = vision(
        r#"{"hidden_size":1024,"intermediate_size":4096,"num_hidden_layers":24,
            "num_attention_heads":16,"num_channels":3,"image_size":448,"patch_size":14,
            "hidden_act":"quick_gelu","layer_norm_eps":1e-5}"#,
    );
    let per_big = activation_bytes_per_image(&big, 2);
    assert!(per_big > 8 * per);
}

#[test]
fn f16_embeddings_match_f32_on_the_fixture() {
    let f32m = Embedder::load_with(&fixture(), DeviceChoice::Cpu, Precision::F32).unwrap();
    let f16m = Embedder::load_with(&fixture(), DeviceChoice::Cpu, Precision::F16).unwrap();
    assert_eq!(f16m.dtype(), DType::F16);
    assert_eq!(f32m.batch_size(0), 32);
    assert_eq!(f32m.batch_size(7), 7);
    let texts = ["a dog on a beach", "red car", "x"];
    let a = f32m.embed_texts(&texts).unwrap();
    let b = f16m.embed_texts(&texts).unwrap();
    for (x, y) in a.iter().zip(&b) {
        assert!(cosine(x, y) >= 0.999, "{}", cosine(x, y));
    }
    let n = 3;
    let per = f32m.geometry().values_per_image();
    let pixels: Vec<f32> = (0..n * per)
        .map(|i| ((i * 7919) % 1000) as f32 / 250.0 - 2.0)
        .collect();
    let a = f32m.embed_pixels(&pixels, n).unwrap();
    let b = f16m.embed_pixels(&pixels, n).unwrap();
    for (x, y) in a.iter().zip(&b) {
        assert!(cosine(x, y) >= 0.999, "{}", cosine(x, y));
    }
    // The split the ingest pipeline overlaps gives the same vectors as the one-call path.
    let uploaded = f32m.upload_pixels(&pixels, n).unwrap();
    assert_eq!(f32m.embed_uploaded(&uploaded).unwrap(), a);
    assert!(f32m.upload_pixels(&pixels[1..], n).is_err());
}

#[test]
fn random_models_build_in_memory() {
    let config = std::fs::read_to_string(format!("{}/config.json", fixture())).unwrap();
    let m = Embedder::random(&config, DeviceChoice::Cpu, Precision::Auto).unwrap();
    let per = m.geometry().values_per_image();
    let v = m.embed_pixels(&vec![0.5; 2 * per], 2).unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].len(), m.dim());
    let norm: f32 = v[0].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-3 && norm.is_finite(), "{norm}");
}
