//! frameseek: search video footage with words.
//!
//! The data path, one module per stage: [`decode`] (FFmpeg decoding and timestamp
//! sampling) -> [`embed`] (CLIP) -> [`store`] (sled, the source of truth) -> [`index`]
//! (usearch). [`ingest`] wires the stages with bounded channels; [`query`] turns hits into
//! clips; [`daemon`] owns the opened state and answers [`protocol`] requests that
//! [`server`] reads from the Unix socket; [`client`] is the other end.

pub mod alert;
pub mod catalog;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod decode;
pub mod devkit;
pub mod embed;
pub mod eval;
pub mod index;
pub mod ingest;
pub mod media;
pub mod metrics;
pub mod milvus;
pub mod notify;
pub mod priority;
pub mod protocol;
pub mod query;
pub mod server;
pub mod setting;
pub mod source;
pub mod store;
