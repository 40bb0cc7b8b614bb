//! Live sources from `ingest` (stream URLs, `--follow` files) and cameras from the
//! configuration: their records, and their threads started or retired.

use super::live::{LiveKind, LiveSpec};
use super::{is_stream_url, redact, Admission, Admitted, CameraConfig, Sources};
use crate::decode::SourceSettings;
use crate::store::{Fingerprint, SourceRecord, SourceState, StoreError};

/// Why a live source could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LiveStartError {
    /// The source is being read as a file.
    #[error("{0} is being ingested as a file; wait until it is done")]
    BusyAsFile(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The live source's thread was not started (too many live sources, no thread).
    #[error(transparent)]
    Live(#[from] super::live::StartError),
    /// A client's stream URL that the configuration does not allow.
    #[error(transparent)]
    Refused(#[from] super::url::StreamRefused),
}

impl Sources {
    /// `ingest` of a stream URL (checked against `ingest.client_streams`) or (`follow`) a
    /// growing file.
    pub(super) fn ingest_live(&self, given: &str, source: &str, url: &str) -> Admission {
        let settings = self.settings.defaults.for_camera(None);
        let _one_at_a_time = self.admitting.lock().expect("admission lock");
        let allowed = if is_stream_url(url) {
            self.settings.client_streams.check(url)
        } else {
            Ok(())
        };
        let started = allowed
            .map_err(LiveStartError::from)
            .and_then(|()| {
                self.live_record(source, settings.interval)
                    .map_err(LiveStartError::from)
            })
            .and_then(|r| self.start_live(&r, url, false, settings));
        let (result, message) = match started {
            Ok(true) => (
                Admitted::Queued,
                format!("live: read continuously; `frameseek forget {source}` stops it"),
            ),
            Ok(false) => (Admitted::Queued, "live: already being read".to_string()),
            Err(e) => (Admitted::Error, e.to_string()),
        };
        Admission {
            given: redact(given),
            source: Some(source.to_string()),
            result,
            message: Some(message),
        }
    }

    /// The record of a live source, created when new.
    fn live_record(&self, source: &str, interval: f64) -> Result<SourceRecord, StoreError> {
        let store = self.catalog.store();
        match store.source(source)? {
            Some(r) => Ok(r),
            None => {
                // One write: a record stored without `live` would resume as a file.
                store.new_source_with(source, Fingerprint::default(), interval, None, |r| {
                    r.live = Some(Default::default())
                })
            }
        }
    }

    /// Marks a source live (URL or growing file) and starts its thread; false when it was
    /// running already.
    pub(super) fn start_live(
        &self,
        record: &SourceRecord,
        url: &str,
        camera: bool,
        settings: SourceSettings,
    ) -> Result<bool, LiveStartError> {
        if self.live.is_running(&record.source) {
            return Ok(false);
        }
        if record.live.is_none()
            && matches!(record.state, SourceState::Queued | SourceState::Ingesting)
        {
            return Err(LiveStartError::BusyAsFile(record.source.clone()));
        }
        let interval = settings.interval;
        self.catalog.store().update_source(&record.source, |r| {
            r.state = SourceState::Ingesting;
            r.error = None;
            r.interval = interval;
            let l = r.live.get_or_insert_with(Default::default);
            l.url = url.to_string();
            l.camera = camera;
        })?;
        let kind = if is_stream_url(url) {
            LiveKind::Stream
        } else {
            LiveKind::GrowingFile
        };
        self.live
            .start(LiveSpec {
                source: record.source.clone(),
                no: record.no,
                url: url.to_string(),
                kind,
                settings,
            })
            .map_err(LiveStartError::Live)
    }

    /// Starts the configured cameras (streams and growing files; folders are scanned with
    /// the watched folders), and retires cameras no longer in the configuration.
    pub(super) fn start_cameras(&self) -> anyhow::Result<()> {
        let store = self.catalog.store();
        for c in &self.configured().cameras {
            self.start_camera(c)?;
        }
        for r in store.sources()? {
            let retired = r.live.as_ref().is_some_and(|l| l.camera)
                && self.camera(&r.source).is_none()
                && r.state == SourceState::Ingesting;
            if retired {
                self.retire_camera(&r.source)?;
            }
        }
        Ok(())
    }

    /// Starts one camera's live source (none for a folder); false when it ran already.
    pub(super) fn start_camera(&self, c: &CameraConfig) -> anyhow::Result<bool> {
        let settings = self.settings.defaults.for_camera(Some(c));
        let url = if is_stream_url(&c.url) {
            c.url.clone()
        } else {
            let path = self
                .roots
                .admit(&c.url)
                .map_err(|e| anyhow::anyhow!("camera {}: {e}", c.name))?;
            if path.is_dir() {
                return Ok(false);
            }
            path.display().to_string()
        };
        let record = self.live_record(&c.name, settings.interval)?;
        self.start_live(&record, &url, true, settings)
            .map_err(|e| anyhow::anyhow!("camera {}: {e}", c.name))
    }

    /// Marks a camera's live source done: it is no longer (or no longer live) in the
    /// configuration.
    pub(super) fn retire_camera(&self, name: &str) -> Result<(), StoreError> {
        self.catalog.store().update_source(name, |r| {
            r.state = SourceState::Done;
            r.error = Some("camera no longer in the configuration".into());
            if let Some(l) = r.live.as_mut() {
                l.connected = false;
            }
        })?;
        Ok(())
    }
}
