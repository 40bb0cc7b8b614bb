//! Development tools, not the daemon's data path: the synthetic camera world that trained
//! the shipped tiny model and renders sample footage with ground truth ([`world`]), sample
//! videos rendered with the `ffmpeg` command for the tests ([`samples`]), and the
//! measurement commands `bench-embed`, `bench-text` and `bench-decode` ([`bench`]).
//!
//! The devkit may use the product's modules; no product module uses the devkit.

pub mod bench;
pub mod samples;
pub mod world;
