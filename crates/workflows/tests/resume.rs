//! Crash safety of the media workflows: a rerun with the checkpoint an interrupted attempt left
//! does not make again what that attempt finished (counted with wrappers around the models).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use nosyntask_domain::TaskError;
use nosyntask_engine::ports::{
    MediaContext, MediaModel, MediaOutput, MediaRequest, ModelCatalog, ModelInfo, TextModel,
    TextRequest, TextResponse,
};
use nosyntask_engine::{CancellationToken, Checkpoints, ProgressReporter, StepContext, StepRun};
use serde_json::{Value, json};
use support::{run_step, simulated};

/// One media call as the model saw it.
#[derive(Debug, Clone)]
struct MediaCall {
    checkpoint_key: String,
    /// The call's checkpoint entry when it started (a provider task to resume).
    entry_at_start: Option<Value>,
}

/// Counts the calls made through it; can fail the `fail_at`-th media call (0-based).
struct Counting {
    inner: Arc<dyn ModelCatalog>,
    text_calls: Arc<AtomicUsize>,
    media_calls: Arc<Mutex<Vec<MediaCall>>>,
    fail_at: Option<usize>,
}

impl Counting {
    fn new(inner: Arc<dyn ModelCatalog>, fail_at: Option<usize>) -> Arc<Self> {
        Arc::new(Counting {
            inner,
            text_calls: Arc::default(),
            media_calls: Arc::default(),
            fail_at,
        })
    }

    fn media_keys(&self) -> Vec<String> {
        self.media_calls
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.checkpoint_key.clone())
            .collect()
    }

    fn media(&self, inner: Arc<dyn MediaModel>) -> Arc<dyn MediaModel> {
        Arc::new(CountingMedia {
            inner,
            calls: self.media_calls.clone(),
            fail_at: self.fail_at,
        })
    }
}

impl ModelCatalog for Counting {
    fn text(&self, name: Option<&str>) -> Result<Arc<dyn TextModel>, TaskError> {
        Ok(Arc::new(CountingText {
            inner: self.inner.text(name)?,
            calls: self.text_calls.clone(),
        }))
    }

    fn image(&self, name: Option<&str>) -> Result<Arc<dyn MediaModel>, TaskError> {
        Ok(self.media(self.inner.image(name)?))
    }

    fn video(&self, name: Option<&str>) -> Result<Arc<dyn MediaModel>, TaskError> {
        Ok(self.media(self.inner.video(name)?))
    }

    fn list(&self) -> Vec<ModelInfo> {
        self.inner.list()
    }
}

struct CountingText {
    inner: Arc<dyn TextModel>,
    calls: Arc<AtomicUsize>,
}

#[async_trait]
impl TextModel for CountingText {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }

    async fn complete(
        &self,
        request: TextRequest,
        cancel: &CancellationToken,
    ) -> Result<TextResponse, TaskError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.complete(request, cancel).await
    }
}

struct CountingMedia {
    inner: Arc<dyn MediaModel>,
    calls: Arc<Mutex<Vec<MediaCall>>>,
    fail_at: Option<usize>,
}

#[async_trait]
impl MediaModel for CountingMedia {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }

    async fn generate(
        &self,
        request: MediaRequest,
        ctx: MediaContext,
    ) -> Result<MediaOutput, TaskError> {
        let entry_at_start = ctx.checkpoint_entry(&request.checkpoint_key).await;
        let index = {
            let mut calls = self.calls.lock().unwrap();
            calls.push(MediaCall {
                checkpoint_key: request.checkpoint_key.clone(),
                entry_at_start,
            });
            calls.len() - 1
        };
        if self.fail_at == Some(index) {
            return Err(TaskError::retryable(
                "simulated crash: the worker died here",
            ));
        }
        self.inner.generate(request, ctx).await
    }
}

fn character() -> Value {
    json!({"characterName": "林冲", "characterId": 12, "appearance": "浓眉，黑色短须，毡笠"})
}

#[tokio::test]
async fn character_views_resume_after_the_front_image() {
    let dir = tempfile::tempdir().unwrap();
    let models = simulated(dir.path());
    let none = BTreeMap::new();

    // Attempt 1 draws the three views at once and dies while drawing the side view; the front
    // and back views finish.
    let first = Counting::new(models.clone(), Some(1));
    let registry = nosyntask_workflows::registry(first.clone());
    let outcome = run_step(
        &registry,
        "character_views_generation",
        &character(),
        0,
        &none,
        None,
    )
    .await;
    assert!(outcome.result.unwrap_err().is_retryable());
    assert_eq!(first.text_calls.load(Ordering::SeqCst), 1);
    assert_eq!(first.media_keys(), ["frontView", "sideView", "backView"]);
    let checkpoint = outcome.checkpoint.expect("attempt 1 left a checkpoint");
    let front_url = checkpoint["frontViewUrl"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(checkpoint.get("prompts").is_some());
    assert!(checkpoint.get("sideViewUrl").is_none());
    assert!(checkpoint.get("backViewUrl").is_some());

    // Attempt 2 gets that checkpoint: no new prompts, no second front view.
    let second = Counting::new(models.clone(), None);
    let registry = nosyntask_workflows::registry(second.clone());
    let outcome = run_step(
        &registry,
        "character_views_generation",
        &character(),
        0,
        &none,
        Some(checkpoint.clone()),
    )
    .await;
    let result = outcome.result.unwrap();
    assert_eq!(
        second.text_calls.load(Ordering::SeqCst),
        0,
        "prompts come from the checkpoint"
    );
    assert_eq!(
        second.media_keys(),
        ["sideView"],
        "the finished views are not drawn again"
    );
    assert_eq!(result["frontViewUrl"], front_url);
    assert_eq!(result["imageUrl"], front_url);
    let prompts = &checkpoint["prompts"];
    assert_eq!(result["prompts"]["front"], prompts["frontPrompt"]);
    assert_eq!(result["prompts"]["back"], prompts["backPrompt"]);

    // A checkpoint holding only the prompts and the front image (the brief's crash point).
    let partial =
        json!({"prompts": checkpoint["prompts"], "frontViewUrl": checkpoint["frontViewUrl"]});
    let third = Counting::new(models.clone(), None);
    let registry = nosyntask_workflows::registry(third.clone());
    let outcome = run_step(
        &registry,
        "character_views_generation",
        &character(),
        0,
        &none,
        Some(partial),
    )
    .await;
    assert_eq!(outcome.result.unwrap()["frontViewUrl"], front_url);
    assert_eq!(third.media_keys(), ["sideView", "backView"]);

    // Everything done already: a rerun calls no model at all.
    let done = outcome.checkpoint.unwrap();
    let fourth = Counting::new(models, None);
    let registry = nosyntask_workflows::registry(fourth.clone());
    let outcome = run_step(
        &registry,
        "character_views_generation",
        &character(),
        0,
        &none,
        Some(done),
    )
    .await;
    assert_eq!(outcome.result.unwrap(), result);
    assert_eq!(
        (
            fourth.text_calls.load(Ordering::SeqCst),
            fourth.media_keys().len()
        ),
        (0, 0)
    );
}

#[tokio::test]
async fn frames_and_scene_images_resume_too() {
    let dir = tempfile::tempdir().unwrap();
    let models = simulated(dir.path());
    let none = BTreeMap::new();

    let params = json!({"prompt": "林冲翻身坐起"});
    let first = Counting::new(models.clone(), Some(1));
    let outcome = run_step(
        &nosyntask_workflows::registry(first.clone()),
        "frame_generation",
        &params,
        0,
        &none,
        None,
    )
    .await;
    assert!(outcome.result.is_err());
    let second = Counting::new(models.clone(), None);
    let outcome = run_step(
        &nosyntask_workflows::registry(second.clone()),
        "frame_generation",
        &params,
        0,
        &none,
        outcome.checkpoint,
    )
    .await;
    outcome.result.unwrap();
    assert_eq!(
        second.media_keys(),
        ["endFrame"],
        "the start frame is not painted again"
    );

    // Step 1 paints (step 0 is the style analysis).
    let params = json!({"sceneName": "草料场", "sceneId": 4});
    let first = Counting::new(models.clone(), Some(0));
    let outcome = run_step(
        &nosyntask_workflows::registry(first.clone()),
        "scene_image_generation",
        &params,
        1,
        &none,
        None,
    )
    .await;
    assert!(outcome.result.is_err());
    assert_eq!(first.text_calls.load(Ordering::SeqCst), 1);
    let second = Counting::new(models, None);
    let outcome = run_step(
        &nosyntask_workflows::registry(second.clone()),
        "scene_image_generation",
        &params,
        1,
        &none,
        outcome.checkpoint,
    )
    .await;
    let result = outcome.result.unwrap();
    assert_eq!(
        second.text_calls.load(Ordering::SeqCst),
        0,
        "the prompt comes from the checkpoint"
    );
    assert_eq!(second.media_keys(), ["image"]);
    assert_eq!(result["sceneId"], 4);
}

#[tokio::test]
async fn a_video_rerun_resumes_the_provider_task() {
    let dir = tempfile::tempdir().unwrap();
    let counting = Counting::new(simulated(dir.path()), None);
    let registry = nosyntask_workflows::registry(counting.clone());
    let definition = registry.get("scene_video").unwrap();
    let params = definition
        .params
        .validate(&json!({"prompt": "snow falls on the temple"}))
        .unwrap();
    let ctx = StepContext {
        job_params: params,
        previous_results: BTreeMap::new(),
        user_id: 1,
        project_id: 7,
        step_index: 0,
    };
    let input = (definition.steps[0].build_input)(&ctx);
    let run = |checkpoint: Checkpoints, cancel: CancellationToken| StepRun {
        input: input.clone(),
        progress: ProgressReporter::detached(),
        checkpoint,
        cancel,
        job_id: 1,
        task_id: 1,
        step_index: 0,
        attempt: 1,
        user_id: 1,
        project_id: 7,
    };

    // Attempt 1 is cancelled (its worker goes away) once the provider task id is saved.
    let checkpoint = Checkpoints::in_memory(None);
    let cancel = CancellationToken::new();
    let handler = definition.steps[0].handler.clone();
    let attempt = tokio::spawn({
        let run = run(checkpoint.clone(), cancel.clone());
        async move { handler.run(run).await }
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while checkpoint
        .entry("video")
        .await
        .and_then(|e| e.get("task").cloned())
        .is_none()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no provider task was checkpointed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cancel.cancel();
    assert_eq!(attempt.await.unwrap(), Err(TaskError::Cancelled));
    let saved_task = checkpoint.entry("video").await.unwrap()["task"].clone();

    // Attempt 2 hands the same checkpoint entry to the model, which polls that task.
    let checkpoint = Checkpoints::in_memory(checkpoint.last().await);
    let result = definition.steps[0]
        .handler
        .run(run(checkpoint.clone(), CancellationToken::new()))
        .await
        .unwrap();
    assert!(result["videoUrl"].as_str().unwrap().starts_with("/files/"));
    let calls = counting.media_calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].checkpoint_key, "video");
    assert_eq!(
        calls[1].entry_at_start.as_ref().map(|e| e["task"].clone()),
        Some(saved_task)
    );

    // Finished: a third run returns the stored video without calling the model.
    let again = definition.steps[0]
        .handler
        .run(run(
            Checkpoints::in_memory(checkpoint.last().await),
            CancellationToken::new(),
        ))
        .await
        .unwrap();
    assert_eq!(again, result);
    assert_eq!(counting.media_calls.lock().unwrap().len(), 2);
}
