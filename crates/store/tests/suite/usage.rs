//! What a task's model calls used, written with its result.

use nosyntask_domain::{TaskUsage, Usage};
use serde_json::json;

use super::*;

pub async fn completion_records_the_tasks_usage(store: Shared) {
    let paid = create(&store, new_job(1, 1), at(0)).await;
    let free = create(&store, new_job(1, 1), at(0)).await;
    let claimed = claim(&store, "w", 2, at(1)).await;
    let of = |id: i64| claimed.iter().find(|c| c.job.id == id).unwrap();
    let mut usage = TaskUsage::default();
    usage.record(
        "DeepSeek Chat",
        Usage {
            prompt_tokens: Some(1200),
            completion_tokens: Some(800),
            cost_micros: Some(8800),
            ..Usage::default()
        },
    );
    usage.record(
        "Wan i2v",
        Usage {
            video_seconds: Some(5),
            ..Usage::default()
        },
    );
    let batch = vec![
        Completion {
            usage: Some(usage.clone()),
            ..completion(of(paid.job.id), json!({"videoUrl": "/files/a.mp4"}))
        },
        completion(of(free.job.id), json!("free")),
    ];
    assert_eq!(
        store.complete_tasks(&batch, at(2)).await.unwrap(),
        vec![true, true]
    );
    let read = get(&store, paid.job.id).await;
    assert_eq!(read.tasks[0].usage, Some(usage.clone()));
    assert_eq!(read.usage(), Some(usage));
    let read = get(&store, free.job.id).await;
    assert_eq!(read.tasks[0].usage, None);
    assert_eq!(read.usage(), None);
}
