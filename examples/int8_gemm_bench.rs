//! GMAC/s of the image tower's int8 linear layer against float32 (candle's gemm) on the
//! ViT-B/32 shapes, one micro-batch of 8 images (400 token rows):
//! `RAYON_NUM_THREADS=1 cargo run --release --example int8_gemm_bench [SECONDS]`.
//! Prints, per shape, the GMAC/s of each kernel over repeated products: from the median
//! time, and in brackets from the fastest run (on a shared machine, the run least disturbed).

use std::time::Instant;

use candle_core::{Device, Tensor};
use frameseek::embed::int8::{has_vnni, Int8Kernel, Int8Linear};

/// (median, fastest) seconds per call of `f`, called repeatedly for about `seconds`.
fn time(seconds: f64, mut f: impl FnMut()) -> (f64, f64) {
    f();
    let start = Instant::now();
    let mut runs = Vec::new();
    while start.elapsed().as_secs_f64() < seconds || runs.len() < 3 {
        let t = Instant::now();
        f();
        runs.push(t.elapsed().as_secs_f64());
    }
    runs.sort_by(f64::total_cmp);
    (runs[runs.len() / 2], runs[0])
}

fn main() -> anyhow::Result<()> {
    let seconds: f64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(2.0);
    let threads = rayon::current_num_threads();
    println!("threads {threads}, VNNI: {}", has_vnni());
    let rows = 400;
    // (name, out, in): qkv, out_proj, fc1, fc2 of one ViT-B/32 layer.
    for (name, out, inp) in [
        ("qkv", 2304, 768),
        ("out_proj", 768, 768),
        ("fc1", 3072, 768),
        ("fc2", 768, 3072),
    ] {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 0.02, (out, inp), &dev)?;
        let x = Tensor::randn(0f32, 1.0, (rows, inp), &dev)?;
        let wt = w.t()?.contiguous()?;
        let xs = x.flatten_all()?.to_vec1::<f32>()?;
        let int8 = Int8Linear::from_tensor(&w)?;
        let macs = (rows * out * inp) as f64 / 1e9;
        let f32_s = time(seconds, || {
            std::hint::black_box(x.matmul(&wt).unwrap());
        });
        let int8_s = time(seconds, || {
            std::hint::black_box(int8.matmul(&xs, rows));
        });
        let avx = int8.clone().with_kernel(Int8Kernel::AvxVnni);
        let avx_s = time(seconds, || {
            std::hint::black_box(avx.matmul(&xs, rows));
        });
        let portable = int8.clone().with_kernel(Int8Kernel::Portable);
        let portable_s = time(seconds.min(1.0), || {
            std::hint::black_box(portable.matmul(&xs, rows));
        });
        println!(
            "{name:9} {rows}x{inp}x{out}: f32 {:6.1} [{:6.1}] GMAC/s, int8 {:6.1} [{:6.1}] GMAC/s, \
             median ratio {:.2}x, int8 AVX-VNNI {:6.1} [{:6.1}] GMAC/s, int8 portable {:5.1} GMAC/s",
            macs / f32_s.0,
            macs / f32_s.1,
            macs / int8_s.0,
            macs / int8_s.1,
            f32_s.0 / int8_s.0,
            macs / avx_s.0,
            macs / avx_s.1,
            macs / portable_s.0
        );
    }
    Ok(())
}
