//! Admission control for clicks: at most `max_inflight` are processed at once, the rest wait
//! in a FIFO queue for at most `queue_timeout` and are then shed (503) rather than queued
//! without bound, so overload fails fast the way the original's did.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::metrics::GaugeGuard;

/// The in-flight slots and the queueing deadline.
#[derive(Debug)]
pub struct Admission {
    slots: Arc<Semaphore>,
    queue_timeout: Duration,
    /// Clicks waiting for a slot (`polymetrie_queued_clicks`): the overload signal.
    queued: Gauge,
}

impl Admission {
    pub fn new(max_inflight: usize, queue_timeout: Duration, queued: Gauge) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max_inflight.max(1))),
            queue_timeout,
            queued,
        }
    }

    /// A slot, or `None` when none freed up within the queue timeout (shed).
    pub async fn admit(&self) -> Option<OwnedSemaphorePermit> {
        // Fast path without arming a timer: the common case below capacity.
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return Some(p);
        }
        let _waiting = GaugeGuard::hold(&self.queued);
        match tokio::time::timeout(self.queue_timeout, self.slots.clone().acquire_owned()).await {
            Ok(Ok(p)) => Some(p),
            _ => None,
        }
    }
}
