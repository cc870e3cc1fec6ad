//! Progress reporting: handlers call `report` as often as they like; the value lands in an atomic
//! slot and the worker's flusher writes the changed slots in one batch per interval, so a chatty
//! handler costs at most one database write per task per interval.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// The shared cell a reporter writes into and the flusher reads from.
#[derive(Debug, Default)]
pub struct ProgressSlot {
    value: AtomicI32,
    dirty: AtomicBool,
}

impl ProgressSlot {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Raises the value (progress is monotonic within an attempt); marks it dirty if it moved.
    fn raise(&self, value: i32) {
        let previous = self.value.fetch_max(value, Ordering::AcqRel);
        if value > previous {
            self.dirty.store(true, Ordering::Release);
        }
    }

    /// The current value if it changed since the last call.
    pub fn take_if_dirty(&self) -> Option<i32> {
        self.dirty
            .swap(false, Ordering::AcqRel)
            .then(|| self.value.load(Ordering::Acquire))
    }

    pub fn current(&self) -> i32 {
        self.value.load(Ordering::Acquire)
    }

    /// Whether the value changed since it was last taken.
    pub fn is_dirty(&self) -> bool {
        self.dirty.load(Ordering::Acquire)
    }

    /// Marks the current value as not yet written (after a failed write).
    pub fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Release);
    }
}

/// Reports a step's progress (0–100). Cloning is cheap; `scaled` maps a sub-task's 0–100 into a
/// part of the step's range, as in the spec's `(p) => onProgress(30 + p * 0.2)`.
#[derive(Debug, Clone)]
pub struct ProgressReporter {
    slot: Arc<ProgressSlot>,
    start: f64,
    span: f64,
}

impl ProgressReporter {
    pub fn new(slot: Arc<ProgressSlot>) -> Self {
        ProgressReporter {
            slot,
            start: 0.0,
            span: 100.0,
        }
    }

    /// A reporter that is not recorded anywhere (tests, direct calls).
    pub fn detached() -> Self {
        Self::new(ProgressSlot::new())
    }

    /// Reports `percent` (clamped to 0–100) of this reporter's range.
    pub fn report(&self, percent: f64) {
        let percent = if percent.is_finite() {
            percent.clamp(0.0, 100.0)
        } else {
            0.0
        };
        let overall = self.start + self.span * percent / 100.0;
        // Completion writes 100 itself; a handler's own reports stop at 99.
        self.slot.raise((overall.floor() as i32).min(99));
    }

    /// A reporter for the part `from`–`to` (in this reporter's 0–100 terms).
    pub fn scaled(&self, from: f64, to: f64) -> ProgressReporter {
        let from = from.clamp(0.0, 100.0);
        let to = to.clamp(from, 100.0);
        ProgressReporter {
            slot: self.slot.clone(),
            start: self.start + self.span * from / 100.0,
            span: self.span * (to - from) / 100.0,
        }
    }

    /// The last value reported (0–99).
    pub fn current(&self) -> i32 {
        self.slot.current()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_monotonic_and_coalesced() {
        let slot = ProgressSlot::new();
        let reporter = ProgressReporter::new(slot.clone());
        assert_eq!(slot.take_if_dirty(), None);
        for p in [5.0, 20.0, 10.0, 30.0] {
            reporter.report(p);
        }
        assert_eq!(slot.take_if_dirty(), Some(30));
        assert_eq!(slot.take_if_dirty(), None);
        reporter.report(25.0);
        assert_eq!(slot.take_if_dirty(), None, "going back is ignored");
    }

    #[test]
    fn scaled_reporters_map_into_their_range() {
        let slot = ProgressSlot::new();
        let reporter = ProgressReporter::new(slot.clone());
        let images = reporter.scaled(30.0, 50.0);
        images.report(50.0);
        assert_eq!(slot.current(), 40);
        images.scaled(50.0, 100.0).report(100.0);
        assert_eq!(slot.current(), 50);
        reporter.report(f64::NAN);
        reporter.report(1000.0);
        assert_eq!(slot.current(), 99, "handlers never report 100 themselves");
    }
}
