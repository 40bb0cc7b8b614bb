//! The alert thread (`alerts`): committed batches are evaluated here, beside ingest, rather
//! than on the embed-commit worker. Recording an incident waits for the database to flush it
//! (it must be durable before it is delivered); on the embed-commit worker that wait held up
//! the next batch. The queue is bounded, so evaluation that falls behind slows ingest rather
//! than growing memory, and it keeps the commit order: a source's end comes after its
//! batches. Work that queued while the thread was busy is evaluated together and recorded in
//! one transaction, with one flush.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::Stage;

/// Batches the queue holds before the embed-commit worker waits.
const QUEUE_BATCHES: usize = 64;

/// What the alert thread is given, in commit order.
pub(super) enum Work {
    /// A committed batch: `(frame key, vector)`.
    Batch(Vec<(u64, Vec<f32>)>),
    /// A source's ingest ended; the sender is told once its incidents are recorded.
    Finished(String, SyncSender<()>),
}

/// The thread and its queue, started by the first batch (so it inherits the embed-commit
/// worker's priority, `ingest.nice`).
#[derive(Default)]
pub(super) struct Worker {
    running: Mutex<Option<(SyncSender<Work>, JoinHandle<()>)>>,
}

impl Worker {
    /// Queues `work`, starting the thread when none runs; waits while the queue is full.
    pub(super) fn send(&self, stage: &Arc<Stage>, work: Work) {
        let tx = {
            let mut running = self.running.lock().expect("alert worker");
            if running.is_none() {
                let (tx, rx) = sync_channel(QUEUE_BATCHES);
                let stage = stage.clone();
                match std::thread::Builder::new()
                    .name("alerts".into())
                    .spawn(move || run(&stage, rx))
                {
                    Ok(thread) => *running = Some((tx, thread)),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot start the alert thread; alerts are evaluated at the next start");
                        return;
                    }
                }
            }
            running.as_ref().map(|(tx, _)| tx.clone())
        };
        if let Some(tx) = tx {
            // Fails only when the thread is gone (it logged why).
            let _ = tx.send(work);
        }
    }

    /// Evaluates what is queued, then stops the thread.
    pub(super) fn stop(&self) {
        let running = self.running.lock().expect("alert worker").take();
        if let Some((tx, thread)) = running {
            drop(tx);
            if thread.join().is_err() {
                tracing::error!(
                    "the alert thread panicked; alerts are evaluated at the next start"
                );
            }
        }
    }
}

fn run(stage: &Stage, rx: Receiver<Work>) {
    while let Ok(first) = rx.recv() {
        let mut work = vec![first];
        work.extend(rx.try_iter());
        let evaluated =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| stage.evaluate(work)));
        if evaluated.is_err() {
            tracing::error!(
                "alert evaluation panicked; those frames are evaluated at the next start"
            );
        }
    }
}
