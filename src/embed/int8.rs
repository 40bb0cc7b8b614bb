//! Linear layers in 8-bit integers for the image tower on the CPU (issue 20).
//!
//! The weights are quantised once at load, one scale per output channel (`max |w| / 127`),
//! and packed for the kernel. Each call quantises its input rows dynamically, one scale per
//! row (per token), multiplies in integers with 32-bit sums, and dequantises to float32 with
//! the two scales. LayerNorm, softmax, attention and the bias stay float32 (the callers).
//!
//! The products run on AVX-512 VNNI (`vpdpbusd`: 64 unsigned×signed byte products summed
//! into 16 lanes per instruction) when the CPU has it, else on the 256-bit AVX-VNNI form.
//! `vpdpbusd` wants unsigned activations, so a row's signed bytes `q` are stored shifted,
//! `q + 128`, and each output channel subtracts `128 × Σ w`, precomputed at load. Without
//! VNNI a portable loop computes the same integer sums: every kernel gives bit-identical
//! results.
//!
//! Packed layout: output channels in tiles of [`TILE_COLS`]; inside a tile, for every group
//! of four input positions, 64 channels × 4 bytes (one 256-byte run, four 64-byte vector
//! loads). A kernel call keeps [`TILE_ROWS`] rows × 64 channels of sums in registers.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Output channels per packed tile: four 16-lane vectors.
const TILE_COLS: usize = 64;
/// Input rows per kernel call: 6 rows × 4 vectors = 24 accumulators of the 32 registers.
const TILE_ROWS: usize = 6;
/// Input positions per `vpdpbusd` lane.
const K_GROUP: usize = 4;

/// Whether this CPU runs the AVX-512 VNNI kernel (AVX-512F/BW/VNNI).
fn has_avx512_vnni() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether this CPU runs the 256-bit AVX-VNNI kernel (AVX2 with AVX-VNNI).
fn has_avx_vnni() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("avxvnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether this CPU multiplies bytes on VNNI (AVX-512 VNNI, or AVX-VNNI), so that int8 is
/// faster than float32 here.
pub fn has_vnni() -> bool {
    has_avx512_vnni() || has_avx_vnni()
}

/// Which integer kernel computes the sums; all give bit-identical results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Int8Kernel {
    /// The widest the CPU has: AVX-512 VNNI, else AVX-VNNI, else [`Int8Kernel::Portable`].
    Auto,
    /// The 256-bit AVX-VNNI kernel where the CPU has it, else [`Int8Kernel::Portable`].
    AvxVnni,
    /// Plain Rust loops: any CPU.
    Portable,
}

impl Int8Kernel {
    /// The kernel that runs on this CPU for this choice.
    fn resolve(self) -> Resolved {
        match self {
            Self::Auto if has_avx512_vnni() => Resolved::Avx512,
            Self::Auto | Self::AvxVnni if has_avx_vnni() => Resolved::Avx256,
            _ => Resolved::Portable,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resolved {
    Avx512,
    Avx256,
    Portable,
}

/// A linear layer's weight (`out × in`) in per-output-channel int8, packed for the kernel.
#[derive(Debug, Clone)]
pub struct Int8Linear {
    in_dim: usize,
    out_dim: usize,
    /// `in_dim` rounded up to [`K_GROUP`].
    k_padded: usize,
    /// `[tile][k group][64 channels][4 bytes]`, zero past `in_dim` and `out_dim`.
    packed: Vec<i8>,
    /// `128 × Σ_k w[n][k]`, per (padded) output channel.
    shift_correction: Vec<i32>,
    /// Per (padded) output channel: `w ≈ q × scale`.
    scales: Vec<f32>,
    kernel: Int8Kernel,
}

impl Int8Linear {
    /// Quantises and packs `weight` (row-major `out_dim × in_dim`, as PyTorch stores it).
    pub fn new(weight: &[f32], out_dim: usize, in_dim: usize) -> Self {
        assert_eq!(weight.len(), out_dim * in_dim, "weight is not out × in");
        let k_padded = in_dim.div_ceil(K_GROUP) * K_GROUP;
        let tiles = out_dim.div_ceil(TILE_COLS);
        let n_padded = tiles * TILE_COLS;
        let mut packed = vec![0i8; n_padded * k_padded];
        let mut shift_correction = vec![0i32; n_padded];
        let mut scales = vec![0f32; n_padded];
        for n in 0..out_dim {
            let row = &weight[n * in_dim..(n + 1) * in_dim];
            let max = row.iter().fold(0f32, |m, w| m.max(w.abs()));
            let scale = max / 127.0;
            let inv = if max > 0.0 { 127.0 / max } else { 0.0 };
            scales[n] = scale;
            let (tile, lane) = (n / TILE_COLS, n % TILE_COLS);
            let base = tile * k_padded * TILE_COLS;
            let mut sum = 0i32;
            for (k, &w) in row.iter().enumerate() {
                let q = (w * inv).round().clamp(-127.0, 127.0) as i8;
                sum += i32::from(q);
                let at = base + (k / K_GROUP) * TILE_COLS * K_GROUP + lane * K_GROUP + k % K_GROUP;
                packed[at] = q;
            }
            shift_correction[n] = 128 * sum;
        }
        Self {
            in_dim,
            out_dim,
            k_padded,
            packed,
            shift_correction,
            scales,
            kernel: Int8Kernel::Auto,
        }
    }

    /// Quantises a float weight tensor shaped `(out, in)`.
    pub fn from_tensor(weight: &Tensor) -> Result<Self> {
        let (out_dim, in_dim) = weight.dims2()?;
        let values = weight
            .to_dtype(candle_core::DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        Ok(Self::new(&values, out_dim, in_dim))
    }

    /// The same layer computed by `kernel` (tests compare the kernels).
    pub fn with_kernel(mut self, kernel: Int8Kernel) -> Self {
        self.kernel = kernel;
        self
    }

    /// Output channels.
    pub fn out_dim(&self) -> usize {
        self.out_dim
    }

    /// `xs W^T` for `rows × in_dim` float32 inputs (row-major), as `rows × out_dim`.
    pub fn matmul(&self, xs: &[f32], rows: usize) -> Vec<f32> {
        assert_eq!(xs.len(), rows * self.in_dim, "input is not rows × in");
        let (acts, row_scales) = self.quantise_rows(xs, rows);
        let mut out = vec![0f32; rows * self.out_dim];
        let tiles = self.out_dim.div_ceil(TILE_COLS);
        let kernel = self.kernel.resolve();
        let out_ptr = SharedOut(out.as_mut_ptr());
        // One task per tile of 64 output channels: each reads its packed weights once and
        // every activation row (which stay in the core's L2), and writes its own columns.
        (0..tiles).into_par_iter().for_each(|tile| {
            let out_ptr = &out_ptr;
            let weights =
                &self.packed[tile * self.k_padded * TILE_COLS..][..self.k_padded * TILE_COLS];
            let first_col = tile * TILE_COLS;
            let cols = TILE_COLS.min(self.out_dim - first_col);
            let epilogue = Epilogue {
                correction: &self.shift_correction[first_col..first_col + TILE_COLS],
                scales: &self.scales[first_col..first_col + TILE_COLS],
                cols,
                out: out_ptr.0,
                out_stride: self.out_dim,
                first_col,
            };
            let mut row = 0;
            while row < rows {
                let n = TILE_ROWS.min(rows - row);
                let a = &acts[row * self.k_padded..(row + n) * self.k_padded];
                let s = &row_scales[row..row + n];
                match kernel {
                    // SAFETY (both): `resolve` confirmed the CPU features; slices hold `n`
                    // rows of `k_padded` bytes and the tile's `k_padded × 64` weights; the
                    // epilogue writes rows `row..row + n`, columns `first_col..first_col +
                    // cols` of `out`, which no other task writes.
                    #[cfg(target_arch = "x86_64")]
                    Resolved::Avx512 => unsafe {
                        vnni::tile(a, n, weights, self.k_padded, s, row, &epilogue)
                    },
                    #[cfg(target_arch = "x86_64")]
                    Resolved::Avx256 => unsafe {
                        vnni256::tile(a, n, weights, self.k_padded, s, row, &epilogue)
                    },
                    _ => portable_tile(a, n, weights, self.k_padded, s, row, &epilogue),
                }
                row += n;
            }
        });
        out
    }

    /// Per-row dynamic quantisation: bytes `round(x / scale) + 128` (row stride `k_padded`,
    /// padding 128, i.e. zero) and the row scales `max |x| / 127`.
    fn quantise_rows(&self, xs: &[f32], rows: usize) -> (Vec<u8>, Vec<f32>) {
        let mut acts = vec![128u8; rows * self.k_padded];
        let mut scales = vec![0f32; rows];
        acts.par_chunks_mut(self.k_padded)
            .zip(scales.par_iter_mut())
            .zip(xs.par_chunks(self.in_dim))
            .for_each(|((a, s), x)| *s = quantise_row(x, a));
        (acts, scales)
    }
}

/// Quantises one row into `out` (`round(x × 127 / max |x|) + 128`) and returns its scale
/// `max |x| / 127`, with the vector width the CPU offers.
fn quantise_row(xs: &[f32], out: &mut [u8]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F, checked just above.
        return unsafe { quantise_row_avx512(xs, out) };
    }
    quantise_row_generic(xs, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn quantise_row_avx512(xs: &[f32], out: &mut [u8]) -> f32 {
    quantise_row_generic(xs, out)
}

#[inline(always)]
fn quantise_row_generic(xs: &[f32], out: &mut [u8]) -> f32 {
    // Adding and subtracting 1.5 × 2^23 rounds to the nearest integer (ties to even)
    // in a form that vectorises, unlike `f32::round`.
    const ROUND: f32 = 12_582_912.0;
    let max = xs.iter().fold(0f32, |m, v| m.max(v.abs()));
    let inv = if max > 0.0 { 127.0 / max } else { 0.0 };
    for (a, &v) in out.iter_mut().zip(xs) {
        // |v × inv| ≤ 127 up to rounding; the clamp keeps it so.
        let q = ((v * inv).clamp(-127.0, 127.0) + ROUND) - ROUND;
        *a = (q as i32 + 128) as u8;
    }
    max / 127.0
}

/// The output pointer shared by the tile tasks; each writes only its own columns.
struct SharedOut(*mut f32);
// SAFETY: tasks write disjoint columns (see `Int8Linear::matmul`), and `out` outlives them.
unsafe impl Sync for SharedOut {}

/// What turns one tile's integer sums into float32 outputs.
struct Epilogue<'a> {
    correction: &'a [i32],
    scales: &'a [f32],
    cols: usize,
    out: *mut f32,
    out_stride: usize,
    first_col: usize,
}

impl Epilogue<'_> {
    /// `(sum - correction) × row_scale × channel_scale`, the operations in this order in
    /// every kernel so that they agree bit for bit.
    #[inline(always)]
    fn value(&self, sum: i32, col: usize, row_scale: f32) -> f32 {
        (sum - self.correction[col]) as f32 * row_scale * self.scales[col]
    }
}

/// The portable kernel: `rows` (≤ [`TILE_ROWS`]) activation rows against one weight tile.
fn portable_tile(
    acts: &[u8],
    rows: usize,
    weights: &[i8],
    k_padded: usize,
    row_scales: &[f32],
    first_row: usize,
    ep: &Epilogue<'_>,
) {
    for r in 0..rows {
        let a = &acts[r * k_padded..(r + 1) * k_padded];
        let mut sums = [0i32; TILE_COLS];
        for (group, w) in a
            .chunks_exact(K_GROUP)
            .zip(weights.chunks_exact(TILE_COLS * K_GROUP))
        {
            for (sum, wc) in sums.iter_mut().zip(w.chunks_exact(K_GROUP)) {
                *sum += group
                    .iter()
                    .zip(wc)
                    .map(|(&x, &w)| i32::from(x) * i32::from(w))
                    .sum::<i32>();
            }
        }
        let row = first_row + r;
        for (c, &sum) in sums.iter().enumerate().take(ep.cols) {
            // SAFETY: row < rows of `out`, first_col + c < out_dim (c < cols); this task
            // owns these columns.
            unsafe {
                *ep.out.add(row * ep.out_stride + ep.first_col + c) =
                    ep.value(sum, c, row_scales[r]);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use std::arch::x86_64::*;

    use super::{Epilogue, K_GROUP, TILE_COLS, TILE_ROWS};

    /// Dispatches `rows` (1..=6) to the kernel specialised for that many rows.
    ///
    /// # Safety
    /// The CPU has AVX-512F, AVX-512BW and AVX-512VNNI; see `Int8Linear::matmul`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn tile(
        acts: &[u8],
        rows: usize,
        weights: &[i8],
        k_padded: usize,
        row_scales: &[f32],
        first_row: usize,
        ep: &Epilogue<'_>,
    ) {
        debug_assert!(acts.len() >= rows * k_padded && weights.len() >= k_padded * TILE_COLS);
        match rows {
            6 => rows_n::<6>(acts, weights, k_padded, row_scales, first_row, ep),
            5 => rows_n::<5>(acts, weights, k_padded, row_scales, first_row, ep),
            4 => rows_n::<4>(acts, weights, k_padded, row_scales, first_row, ep),
            3 => rows_n::<3>(acts, weights, k_padded, row_scales, first_row, ep),
            2 => rows_n::<2>(acts, weights, k_padded, row_scales, first_row, ep),
            _ => rows_n::<1>(acts, weights, k_padded, row_scales, first_row, ep),
        }
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[inline]
    unsafe fn rows_n<const R: usize>(
        acts: &[u8],
        weights: &[i8],
        k_padded: usize,
        row_scales: &[f32],
        first_row: usize,
        ep: &Epilogue<'_>,
    ) {
        const { assert!(R <= TILE_ROWS) };
        let mut acc = [[_mm512_setzero_si512(); 4]; R];
        let a = acts.as_ptr();
        let w = weights.as_ptr();
        for g in 0..k_padded / K_GROUP {
            let wg = w.add(g * TILE_COLS * K_GROUP);
            let w0 = _mm512_loadu_si512(wg.cast());
            let w1 = _mm512_loadu_si512(wg.add(64).cast());
            let w2 = _mm512_loadu_si512(wg.add(128).cast());
            let w3 = _mm512_loadu_si512(wg.add(192).cast());
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = a
                    .add(r * k_padded + g * K_GROUP)
                    .cast::<i32>()
                    .read_unaligned();
                let x = _mm512_set1_epi32(x);
                acc[0] = _mm512_dpbusd_epi32(acc[0], x, w0);
                acc[1] = _mm512_dpbusd_epi32(acc[1], x, w1);
                acc[2] = _mm512_dpbusd_epi32(acc[2], x, w2);
                acc[3] = _mm512_dpbusd_epi32(acc[3], x, w3);
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            let row_scale = _mm512_set1_ps(row_scales[r]);
            let out_row = ep.out.add((first_row + r) * ep.out_stride + ep.first_col);
            for (v, &sum) in acc.iter().enumerate() {
                let c0 = v * 16;
                if c0 >= ep.cols {
                    break;
                }
                let corr = _mm512_loadu_si512(ep.correction.as_ptr().add(c0).cast());
                let scale = _mm512_loadu_ps(ep.scales.as_ptr().add(c0));
                // Same order as `Epilogue::value`: (sum - corr) as f32 * row * channel.
                let y = _mm512_mul_ps(
                    _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(sum, corr)), row_scale),
                    scale,
                );
                let left = ep.cols - c0;
                if left >= 16 {
                    _mm512_storeu_ps(out_row.add(c0), y);
                } else {
                    _mm512_mask_storeu_ps(out_row.add(c0), (1u16 << left) - 1, y);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod vnni256 {
    use std::arch::x86_64::*;

    use super::{Epilogue, K_GROUP, TILE_COLS};

    /// Rows processed together: 2 rows × 4 vectors of 8 channels = 8 accumulators, plus 4
    /// weight vectors, of the 16 registers.
    const ROWS: usize = 2;

    /// `rows` activation rows against one tile of 64 channels, as two halves of 32.
    ///
    /// # Safety
    /// The CPU has AVX2 and AVX-VNNI; see `Int8Linear::matmul`.
    #[target_feature(enable = "avx2,avxvnni")]
    pub(super) unsafe fn tile(
        acts: &[u8],
        rows: usize,
        weights: &[i8],
        k_padded: usize,
        row_scales: &[f32],
        first_row: usize,
        ep: &Epilogue<'_>,
    ) {
        debug_assert!(acts.len() >= rows * k_padded && weights.len() >= k_padded * TILE_COLS);
        let mut r = 0;
        while r < rows {
            for half in 0..2 {
                if half * 32 >= ep.cols {
                    break;
                }
                if rows - r >= ROWS {
                    rows_n::<2>(acts, r, weights, half, k_padded, row_scales, first_row, ep);
                } else {
                    rows_n::<1>(acts, r, weights, half, k_padded, row_scales, first_row, ep);
                }
            }
            r += ROWS;
        }
    }

    #[target_feature(enable = "avx2,avxvnni")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn rows_n<const R: usize>(
        acts: &[u8],
        r0: usize,
        weights: &[i8],
        half: usize,
        k_padded: usize,
        row_scales: &[f32],
        first_row: usize,
        ep: &Epilogue<'_>,
    ) {
        let mut acc = [[_mm256_setzero_si256(); 4]; R];
        let a = acts.as_ptr().add(r0 * k_padded);
        let w = weights.as_ptr().add(half * 128);
        for g in 0..k_padded / K_GROUP {
            let wg = w.add(g * TILE_COLS * K_GROUP);
            let w0 = _mm256_loadu_si256(wg.cast());
            let w1 = _mm256_loadu_si256(wg.add(32).cast());
            let w2 = _mm256_loadu_si256(wg.add(64).cast());
            let w3 = _mm256_loadu_si256(wg.add(96).cast());
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = a
                    .add(r * k_padded + g * K_GROUP)
                    .cast::<i32>()
                    .read_unaligned();
                let x = _mm256_set1_epi32(x);
                acc[0] = _mm256_dpbusd_avx_epi32(acc[0], x, w0);
                acc[1] = _mm256_dpbusd_avx_epi32(acc[1], x, w1);
                acc[2] = _mm256_dpbusd_avx_epi32(acc[2], x, w2);
                acc[3] = _mm256_dpbusd_avx_epi32(acc[3], x, w3);
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            let row = r0 + r;
            let row_scale = _mm256_set1_ps(row_scales[row]);
            let out_row = ep.out.add((first_row + row) * ep.out_stride + ep.first_col);
            for (v, &sum) in acc.iter().enumerate() {
                let c0 = half * 32 + v * 8;
                if c0 >= ep.cols {
                    break;
                }
                let corr = _mm256_loadu_si256(ep.correction.as_ptr().add(c0).cast());
                let scale = _mm256_loadu_ps(ep.scales.as_ptr().add(c0));
                // Same order as `Epilogue::value`: (sum - corr) as f32 * row * channel.
                let y = _mm256_mul_ps(
                    _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(sum, corr)), row_scale),
                    scale,
                );
                let left = ep.cols - c0;
                if left >= 8 {
                    _mm256_storeu_ps(out_row.add(c0), y);
                } else {
                    let mut lanes = [0f32; 8];
                    _mm256_storeu_ps(lanes.as_mut_ptr(), y);
                    std::ptr::copy_nonoverlapping(lanes.as_ptr(), out_row.add(c0), left);
                }
            }
        }
    }
}

/// `Int8Linear` as a candle operation on a contiguous float32 CPU tensor `(rows, in)`.
impl CustomOp1 for Int8Linear {
    fn name(&self) -> &'static str {
        "frameseek-int8-linear"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(xs) = storage else {
            candle_core::bail!("{}: float32 input only", self.name());
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("{}: contiguous input only", self.name());
        };
        let (rows, in_dim) = layout.shape().dims2()?;
        if in_dim != self.in_dim {
            candle_core::bail!(
                "{}: input width {in_dim}, weight expects {}",
                self.name(),
                self.in_dim
            );
        }
        let out = self.matmul(&xs[start..end], rows);
        Ok((CpuStorage::F32(out), Shape::from((rows, self.out_dim))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn reference(xs: &[f32], w: &[f32], rows: usize, out: usize, inp: usize) -> Vec<f32> {
        let mut y = vec![0f32; rows * out];
        for r in 0..rows {
            for n in 0..out {
                y[r * out + n] = (0..inp)
                    .map(|k| xs[r * inp + k] as f64 * w[n * inp + k] as f64)
                    .sum::<f64>() as f32;
            }
        }
        y
    }

    /// Odd sizes exercise every row count of the VNNI kernel, a partial last tile of
    /// channels and input widths that are not a multiple of four.
    #[test]
    fn kernels_agree_bit_for_bit_and_approximate_the_float_product() {
        for (rows, out, inp) in [(13, 70, 30), (1, 64, 4), (50, 200, 97), (7, 3, 5)] {
            let w = random(out * inp, 1 + rows as u64);
            let x = random(rows * inp, 99 + out as u64);
            let auto = Int8Linear::new(&w, out, inp);
            let p = auto
                .clone()
                .with_kernel(Int8Kernel::Portable)
                .matmul(&x, rows);
            let a = auto.matmul(&x, rows);
            let avx = auto
                .clone()
                .with_kernel(Int8Kernel::AvxVnni)
                .matmul(&x, rows);
            let dims = format!("{rows}×{out}×{inp}");
            let cpu = (has_avx512_vnni(), has_avx_vnni());
            assert_eq!(
                a, p,
                "{dims}: widest kernel differs, (avx512 vnni, avx vnni) = {cpu:?}"
            );
            assert_eq!(
                avx, p,
                "{dims}: AVX-VNNI kernel differs, (avx512 vnni, avx vnni) = {cpu:?}"
            );
            let want = reference(&x, &w, rows, out, inp);
            let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
            for (g, r) in p.iter().zip(&want) {
                dot += (*g as f64) * (*r as f64);
                na += (*g as f64).powi(2);
                nb += (*r as f64).powi(2);
            }
            let cos = dot / (na.sqrt() * nb.sqrt());
            assert!(cos > 0.999, "{rows}×{out}×{inp}: cosine {cos}");
        }
    }

    /// A row of zeros (scale 0) and a zero weight channel give exact zeros, not NaN.
    #[test]
    fn zero_rows_and_channels_give_zero() {
        let (out, inp) = (5, 8);
        let mut w = random(out * inp, 3);
        w[..inp].iter_mut().for_each(|v| *v = 0.0);
        let mut x = random(2 * inp, 4);
        x[inp..].iter_mut().for_each(|v| *v = 0.0);
        let y = Int8Linear::new(&w, out, inp).matmul(&x, 2);
        assert_eq!(y[0], 0.0);
        assert!(y[out..].iter().all(|v| *v == 0.0), "{y:?}");
        assert!(y.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn the_candle_op_checks_the_input_width() -> Result<()> {
        let lin = Int8Linear::new(&random(4 * 6, 5), 4, 6);
        let x = Tensor::new(&[[1f32, 2., 3., 4., 5., 6.]], &candle_core::Device::Cpu)?;
        let y = x.apply_op1_no_bwd(&lin)?;
        assert_eq!(y.dims(), &[1, 4]);
        let bad = Tensor::new(&[[1f32, 2.]], &candle_core::Device::Cpu)?;
        let e = bad.apply_op1_no_bwd(&lin).unwrap_err().to_string();
        assert!(e.contains("input width 2"), "{e}");
        Ok(())
    }
}
