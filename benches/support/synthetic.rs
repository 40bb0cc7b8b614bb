//! Synthetic embedding vectors for the index benchmark (`benches/index_scale.rs`) and the
//! query-state preload (`examples/preload_state.rs`): a seeded generator and normalisation.

/// SplitMix64: small, seeded, the same sequence everywhere.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    pub fn uniform(&mut self) -> f32 {
        ((self.next() >> 40) as f32 + 0.5) / (1u64 << 24) as f32
    }

    /// Two independent standard normal values (Box-Muller).
    pub fn normal_pair(&mut self) -> (f32, f32) {
        let r = (-2.0 * self.uniform().ln()).sqrt();
        let t = std::f32::consts::TAU * self.uniform();
        (r * t.cos(), r * t.sin())
    }

    /// Fills `out` with normal values of standard deviation `std`.
    #[allow(dead_code)]
    pub fn fill_normal(&mut self, out: &mut [f32], std: f32) {
        for pair in out.chunks_mut(2) {
            let (a, b) = self.normal_pair();
            pair[0] = a * std;
            if pair.len() > 1 {
                pair[1] = b * std;
            }
        }
    }
}

/// Scales `v` to unit length.
pub fn normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
}
