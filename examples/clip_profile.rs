//! Times the pieces of one ViT-B/32 encoder layer on the CPU with candle, to see where the
//! image tower's time goes: `cargo run --release --example clip_profile -- [BATCH]`.

use std::time::Instant;

use candle_core::{Device, Module, Tensor};
use frameseek::embed::kernels::BiasAct;
use frameseek::embed::Activation;

fn time<T>(label: &str, reps: usize, mut f: impl FnMut() -> candle_core::Result<T>) -> f64 {
    f().expect(label);
    let start = Instant::now();
    for _ in 0..reps {
        f().expect(label);
    }
    let ms = start.elapsed().as_secs_f64() * 1000.0 / reps as f64;
    println!("{label:<40} {ms:9.2} ms");
    ms
}

fn main() -> candle_core::Result<()> {
    let batch: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(32);
    let dev = Device::Cpu;
    let (n, h, heads, inter) = (50usize, 768usize, 12usize, 3072usize);
    let d = h / heads;
    let rows = batch * n;
    let x = Tensor::randn(0f32, 1.0, (rows, h), &dev)?;
    let w_qkv = Tensor::randn(0f32, 0.03, (h, 3 * h), &dev)?;
    let w_o = Tensor::randn(0f32, 0.03, (h, h), &dev)?;
    let w1 = Tensor::randn(0f32, 0.03, (h, inter), &dev)?;
    let w2 = Tensor::randn(0f32, 0.03, (inter, h), &dev)?;
    let b1 = Tensor::randn(0f32, 0.03, inter, &dev)?;
    let ln = candle_nn::LayerNorm::new(
        Tensor::ones(h, candle_core::DType::F32, &dev)?,
        Tensor::zeros(h, candle_core::DType::F32, &dev)?,
        1e-5,
    );
    let hmid = Tensor::randn(0f32, 1.0, (rows, inter), &dev)?;
    let qkv = x.matmul(&w_qkv)?;
    println!("batch {batch}: {rows} rows");
    let mut total = 0.0;
    total += time("layer_norm (rows x 768)", 5, || ln.forward(&x));
    total += time("qkv matmul (768 -> 2304)", 5, || x.matmul(&w_qkv));
    total += time("qkv split heads (permute+contiguous)", 5, || {
        qkv.reshape((batch, n, 3, heads, d))?
            .permute((2, 0, 3, 1, 4))?
            .contiguous()
    });
    let qkvh = qkv
        .reshape((batch, n, 3, heads, d))?
        .permute((2, 0, 3, 1, 4))?
        .contiguous()?;
    let (q, k, v) = (qkvh.get(0)?, qkvh.get(1)?, qkvh.get(2)?);
    total += time("q k^T (batched)", 5, || q.matmul(&k.t()?));
    let s = q.matmul(&k.t()?)?;
    total += time("softmax", 5, || candle_nn::ops::softmax_last_dim(&s));
    total += time("p v (batched)", 5, || s.matmul(&v));
    let o = s.matmul(&v)?;
    total += time("merge heads (transpose+reshape)", 5, || {
        o.transpose(1, 2)?.reshape((batch, n, h))
    });
    total += time("out matmul (768 -> 768)", 5, || x.matmul(&w_o));
    total += time("residual add", 5, || &x + &x);
    total += time("layer_norm 2", 5, || ln.forward(&x));
    total += time("fc1 matmul (768 -> 3072)", 5, || x.matmul(&w1));
    if std::env::var("PROFILE_UNFUSED").is_ok() {
        total += time("fc1 bias add", 5, || hmid.broadcast_add(&b1));
        total += time("quick_gelu (3 passes)", 5, || {
            &hmid * candle_nn::ops::sigmoid(&(&hmid * 1.702)?)?
        });
    } else {
        total += time("fc1 bias + quick_gelu (fused kernel)", 5, || {
            BiasAct(Some(Activation::QuickGelu)).apply(&hmid, &b1)
        });
    }
    total += time("fc2 matmul (3072 -> 768)", 5, || hmid.matmul(&w2));
    total += time("residual add 2", 5, || &x + &x);
    println!(
        "{:<40} {total:9.2} ms  (x12 layers = {:.0} ms, {:.1} images/s)",
        "one layer",
        total * 12.0,
        batch as f64 / (total * 12.0 / 1000.0)
    );
    Ok(())
}
