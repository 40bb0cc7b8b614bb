//! Live sources: stream URLs (RTSP, RTMP, MPEG-TS over UDP/RTP/SRT/TCP, HLS over HTTP) and
//! files still being written. Each runs on its own thread (never on a file decode worker),
//! samples frames with the source's settings and hands them to the same bounded channel as
//! the file decoders ([`FrameSink`]).
//!
//! A stream that drops, stalls (no data for `ingest.live_timeout`) or cannot be opened is an
//! outage: it is recorded in the source's record (start, end, FFmpeg's reason; `status`
//! shows it) and the stream is opened again after a back-off that doubles from 1 s up to
//! `ingest.reconnect_max`, each wait varied by up to ±20 % so that cameras behind one
//! failed switch do not reconnect in lockstep.
//!
//! Time: a stream frame's wall clock is the sender's clock where FFmpeg reports one (RTSP
//! sender reports: `start_time_realtime`), else the arrival time of the connection's first
//! frame plus PTS deltas. Its offset (the frame key) is that wall clock minus the source's
//! first frame's, forced to increase across reconnects and timestamp resets. A growing
//! file's offsets are its presentation times, like any file's.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::catalog::Catalog;
use crate::decode::SourceSettings;
use crate::embed::PixelGeometry;
use crate::ingest::FrameSink;

mod timeline;
mod worker;

pub use timeline::{Backoff, TimeLine};
use worker::LiveWorker;

/// RTSP transport, `ingest.rtsp_transport`: `tcp` (default: no loss behind NAT and
/// firewalls) or `udp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum RtspTransport {
    /// Interleaved in the RTSP connection.
    #[default]
    Tcp,
    /// RTP over UDP.
    Udp,
}

crate::setting::named_setting!(RtspTransport, "tcp or udp", { "tcp" => Tcp, "udp" => Udp });

/// What a live source reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveKind {
    /// A network stream, reconnected after every drop.
    Stream,
    /// A file being written, followed until it stops growing for `live_timeout`.
    GrowingFile,
}

/// The FFmpeg protocols a live source may open (`protocol_whitelist`): only what its own
/// kind needs, so that a stream cannot make FFmpeg open other protocols (an HLS playlist
/// naming `file:` segments, an RTSP server redirecting to another scheme).
pub fn protocol_whitelist(kind: LiveKind, scheme: &str) -> &'static str {
    match (kind, scheme) {
        (LiveKind::GrowingFile, _) => "file",
        (_, "rtsp") => "rtsp,rtp,udp,tcp",
        (_, "rtsps") => "rtsp,rtsps,rtp,udp,tcp,tls",
        (_, "udp") => "udp",
        (_, "rtp") => "rtp,udp",
        (_, "http" | "https") => "http,https,tcp,tls,crypto,hls",
        (_, "rtmp") => "rtmp,tcp",
        (_, "rtmps") => "rtmp,rtmps,tcp,tls",
        (_, "tcp") => "tcp",
        (_, "srt") => "srt",
        // A scheme not read as a stream: nothing.
        _ => "none",
    }
}

/// One live source to run.
#[derive(Debug, Clone)]
pub struct LiveSpec {
    /// Source id.
    pub source: String,
    /// Source number (key prefix).
    pub no: u32,
    /// URL, or the growing file's path.
    pub url: String,
    /// Stream or growing file.
    pub kind: LiveKind,
    /// Sampling settings of this source.
    pub settings: SourceSettings,
}

/// Settings shared by every live source.
#[derive(Debug, Clone)]
pub struct LiveSettings {
    /// No data for this long: the stream is down (or the file stopped growing).
    pub timeout: Duration,
    /// Longest wait between reconnection attempts.
    pub reconnect_max: Duration,
    /// RTSP transport.
    pub rtsp_transport: RtspTransport,
    /// FFmpeg decoder threads, 0 = automatic.
    pub decoder_threads: usize,
    /// Nice value of the live threads (and the FFmpeg threads they start), `ingest.nice`.
    pub nice: i32,
    /// Most live sources running at once, `ingest.max_live_sources`.
    pub max_sources: usize,
}

/// Why a live source's thread was not started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// `ingest.max_live_sources` are running already.
    #[error("{max} live sources are running already (ingest.max_live_sources); `frameseek forget` one, or raise the setting")]
    Full {
        /// The cap.
        max: usize,
    },
    /// No thread could be started.
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
}

/// The running live sources, one thread each.
pub struct LiveSources {
    runners: Mutex<HashMap<String, Runner>>,
    catalog: Arc<Catalog>,
    sink: Mutex<Option<FrameSink>>,
    geometry: PixelGeometry,
    settings: LiveSettings,
}

impl std::fmt::Debug for LiveSources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self
            .runners
            .lock()
            .expect("runners lock")
            .keys()
            .cloned()
            .collect();
        f.debug_struct("LiveSources")
            .field("running", &names)
            .finish()
    }
}

struct Runner {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl LiveSources {
    /// No live source running yet; frames go to `sink`.
    pub fn new(
        catalog: Arc<Catalog>,
        sink: FrameSink,
        geometry: PixelGeometry,
        settings: LiveSettings,
    ) -> Self {
        Self {
            runners: Mutex::new(HashMap::new()),
            catalog,
            sink: Mutex::new(Some(sink)),
            geometry,
            settings,
        }
    }

    /// Starts reading a source on its own thread, unless it is running; true when started.
    /// Refused when `ingest.max_live_sources` run already.
    pub fn start(&self, spec: LiveSpec) -> Result<bool, StartError> {
        let mut runners = self.runners.lock().expect("runners lock");
        if let Some(r) = runners.get(&spec.source) {
            if !r.thread.is_finished() {
                return Ok(false);
            }
        }
        let running = runners.values().filter(|r| !r.thread.is_finished()).count();
        if running >= self.settings.max_sources {
            return Err(StartError::Full {
                max: self.settings.max_sources,
            });
        }
        let Some(sink) = self.sink.lock().expect("sink lock").clone() else {
            return Ok(false);
        };
        let stop = Arc::new(AtomicBool::new(false));
        let source = spec.source.clone();
        let worker = LiveWorker {
            spec,
            catalog: self.catalog.clone(),
            sink,
            geometry: self.geometry.clone(),
            settings: self.settings.clone(),
            stop: stop.clone(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("live-{}", worker.spec.no))
            .spawn(move || {
                crate::priority::lower_this_thread(worker.settings.nice);
                worker.run()
            })
            .map_err(StartError::Thread)?;
        runners.insert(source, Runner { stop, thread });
        Ok(true)
    }

    /// True while the source's thread runs.
    pub fn is_running(&self, source: &str) -> bool {
        self.runners
            .lock()
            .expect("runners lock")
            .get(source)
            .is_some_and(|r| !r.thread.is_finished())
    }

    /// Stops a source's thread and waits for it; false when it was not running.
    pub fn stop(&self, source: &str) -> bool {
        let runner = self.runners.lock().expect("runners lock").remove(source);
        match runner {
            Some(r) => {
                r.stop.store(true, Ordering::SeqCst);
                let running = !r.thread.is_finished();
                let _ = r.thread.join();
                running
            }
            None => false,
        }
    }

    /// Stops every live source (they resume at the next start) and lets go of the sink.
    pub fn stop_all(&self) {
        self.sink.lock().expect("sink lock").take();
        let runners: Vec<Runner> = self
            .runners
            .lock()
            .expect("runners lock")
            .drain()
            .map(|(_, r)| r)
            .collect();
        for r in &runners {
            r.stop.store(true, Ordering::SeqCst);
        }
        for r in runners {
            let _ = r.thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_may_open_only_its_own_protocols() {
        assert_eq!(protocol_whitelist(LiveKind::GrowingFile, ""), "file");
        let hls = protocol_whitelist(LiveKind::Stream, "https");
        assert!(!hls.split(',').any(|p| p == "file" || p == "udp"), "{hls}");
        assert_eq!(protocol_whitelist(LiveKind::Stream, "udp"), "udp");
        for scheme in crate::source::url::STREAM_SCHEMES {
            let list = protocol_whitelist(LiveKind::Stream, scheme);
            assert!(!list.split(',').any(|p| p == "file"), "{scheme}: {list}");
            assert_ne!(list, "none", "{scheme}");
        }
    }
}
