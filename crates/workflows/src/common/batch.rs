//! Running the items of a batch step inside one handler, at most `max_concurrency` at a time,
//! with the step's progress the average of the items' progress.
//!
//! The engine cannot fan a step out into one task per item yet; until it can, a batch is one
//! task whose items share its attempts and timeout. Each item keeps its generated media in the
//! task's checkpoint under its own keys, so a rerun after a crash does not pay for finished
//! items again.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use nosyntask_engine::{ProgressReporter, ProgressSlot};

/// How often the step's progress is refreshed from its items'.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Runs `work` over `items`, at most `max_concurrency` at once; results are in item order.
pub(crate) async fn run_items<T, R, F, Fut>(
    items: Vec<T>,
    max_concurrency: usize,
    progress: &ProgressReporter,
    work: F,
) -> Vec<R>
where
    F: Fn(T, ProgressReporter) -> Fut,
    Fut: Future<Output = R>,
{
    let total = items.len();
    let slots: Vec<Arc<ProgressSlot>> = (0..total).map(|_| ProgressSlot::new()).collect();
    let mut done = vec![false; total];
    let mut results: Vec<Option<R>> = (0..total).map(|_| None).collect();
    let mut running = futures::stream::iter(items.into_iter().enumerate().map(|(index, item)| {
        let future = work(item, ProgressReporter::new(slots[index].clone()));
        async move { (index, future.await) }
    }))
    .buffer_unordered(max_concurrency.max(1));
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    let average = |done: &[bool]| {
        let sum: f64 = slots
            .iter()
            .zip(done)
            .map(|(slot, done)| {
                if *done {
                    100.0
                } else {
                    f64::from(slot.current())
                }
            })
            .sum();
        if total == 0 {
            100.0
        } else {
            sum / total as f64
        }
    };
    loop {
        tokio::select! {
            next = running.next() => match next {
                Some((index, result)) => {
                    done[index] = true;
                    results[index] = Some(result);
                    progress.report(average(&done));
                }
                None => break,
            },
            _ = tick.tick() => progress.report(average(&done)),
        }
    }
    results.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keeps_item_order_bounds_concurrency_and_averages_progress() {
        let slot = ProgressSlot::new();
        let reporter = ProgressReporter::new(slot.clone());
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let results = run_items((0..10).collect(), 3, &reporter, |item: u64, progress| {
            let (running, most) = (running.clone(), most.clone());
            async move {
                let now = running.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                most.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                progress.report(50.0);
                tokio::time::sleep(Duration::from_millis(10 * (10 - item))).await;
                running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                item * 2
            }
        })
        .await;
        assert_eq!(results, (0..10).map(|i| i * 2).collect::<Vec<_>>());
        assert!(most.load(std::sync::atomic::Ordering::SeqCst) <= 3);
        // A handler's own reports stop at 99; completion writes 100.
        assert_eq!(slot.current(), 99);
    }
}
