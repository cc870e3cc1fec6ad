//! `async_task`: a declarative adapter for APIs that take a generation request, answer with a
//! task id, and are polled until the task finishes. Everything is configuration: URL, header and
//! body templates with `{{placeholders}}`, dot paths into the responses and the status values
//! that mean success, failure or cancellation. The presets (Replicate, fal, DashScope, OpenAI
//! videos) are such configurations.

mod job;
mod spec;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nosyntask_domain::TaskError;
use nosyntask_engine::ports::{
    ArtifactStore, MediaContext, MediaModel, MediaOutput, MediaRequest, ModelInfo, ModelKind, Usage,
};

use super::references::References;
use super::{fit_duration, fit_size, store_result};
use crate::config::ModelConfig;
use crate::http::{HttpClient, is_gone_error, redact};
use crate::media::MediaKind;
use crate::poll::{PollOptions, checkpointed_task, forget, submit_and_poll};
use crate::profile::Profile;
use crate::profile::usage::finish;
use crate::template::{Var, Vars};

use job::Job;
pub use spec::{AsyncTaskConfig, AsyncTaskSpec, KeyError, RequestConfig};

/// A media model behind a declarative async task API.
pub struct AsyncTaskModel {
    info: ModelInfo,
    config: ModelConfig,
    spec: AsyncTaskSpec,
    http: HttpClient,
    artifacts: Arc<dyn ArtifactStore>,
    profile: Profile,
}

impl AsyncTaskModel {
    pub fn new(
        info: ModelInfo,
        config: ModelConfig,
        http: HttpClient,
        artifacts: Arc<dyn ArtifactStore>,
    ) -> Result<Self, KeyError> {
        let spec = AsyncTaskSpec::from_model(&config)?;
        let profile = Profile::for_model(&config);
        Ok(AsyncTaskModel {
            info,
            config,
            spec,
            http,
            artifacts,
            profile,
        })
    }

    /// The model's capability profile.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// What a finished call used: the provider's report, else one image or the video length
    /// asked for, with the cost from the profile's prices.
    fn usage_of(&self, job: &Job<'_>, request: &MediaRequest) -> Usage {
        let (images, seconds) = match self.info.kind {
            ModelKind::Video => (
                None,
                request
                    .duration_secs
                    .filter(|d| *d > 0)
                    .map(|d| u64::from(fit_duration(d, &self.profile.durations))),
            ),
            _ => (Some(1), None),
        };
        finish(job.usage(), images, seconds, self.profile.prices.as_ref())
    }

    fn media_kind(&self) -> MediaKind {
        match self.info.kind {
            ModelKind::Video => MediaKind::Video,
            _ => MediaKind::Image,
        }
    }

    async fn vars(&self, request: &MediaRequest, api_key: Option<&str>) -> Result<Vars, TaskError> {
        let (width, height) = match (request.width, request.height, self.profile.default_size) {
            (0, _, Some(size)) | (_, 0, Some(size)) => size,
            (w, h, _) => fit_size(w, h, &self.profile.sizes),
        };
        let references = References {
            artifacts: &self.artifacts,
            http: &self.http,
            inline: self.profile.inline_references,
            timeout: Duration::from_secs(self.spec.config.request_timeout_secs),
        };
        let image_url = references.resolve_opt(request.image_url.as_deref()).await?;
        let end_image_url = references
            .resolve_opt(request.end_image_url.as_deref())
            .await?;
        let mut vars = Vars::new();
        vars.set_text("prompt", request.prompt.clone())
            .set_opt("negative_prompt", request.negative_prompt.as_deref())
            .set_text("model", self.config.provider_model())
            .set_text("base_url", self.config.base())
            .set_opt("image_url", image_url.as_deref())
            .set_opt("end_image_url", end_image_url.as_deref())
            .set_opt("api_key", api_key);
        if width > 0 && height > 0 {
            vars.set("width", Var::Number(width.into()))
                .set("height", Var::Number(height.into()))
                .set_text("size", format!("{width}x{height}"));
        }
        if let Some(duration) = request.duration_secs.filter(|d| *d > 0) {
            vars.set(
                "duration",
                Var::Number(fit_duration(duration, &self.profile.durations).into()),
            );
        }
        Ok(vars)
    }
}

#[async_trait]
impl MediaModel for AsyncTaskModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    async fn generate(
        &self,
        request: MediaRequest,
        ctx: MediaContext,
    ) -> Result<MediaOutput, TaskError> {
        let api_key = self.config.api_key()?;
        let job = Job {
            model: self,
            vars: self.vars(&request, api_key.as_deref()).await?,
            extra: request.extra.clone(),
            usage: Default::default(),
        };
        let cfg = &self.spec.config;
        let mut options = PollOptions::new(
            self.config.adapter.as_str(),
            Duration::from_millis(cfg.poll_interval_ms),
            self.info.timeout,
        );
        options.expected = Duration::from_secs(cfg.expected_secs);
        let result = async {
            let result = submit_and_poll(&job, &request.checkpoint_key, &ctx, &options).await?;
            ctx.progress.report(92.0);
            let stored = store_result(
                &self.http,
                &self.artifacts,
                result,
                self.media_kind(),
                self.config.max_media_bytes(),
                self.info.timeout,
                &request.checkpoint_key,
            )
            .await;
            let output = match stored {
                // Replicate deletes outputs an hour after a prediction ends; a file that is gone
                // will stay gone, so the task is forgotten and the next attempt submits again.
                Err(err) if is_gone_error(&err) => {
                    let Some(task) = checkpointed_task(&ctx, &request.checkpoint_key).await else {
                        return Err(err);
                    };
                    let message = format!("its output can no longer be downloaded: {err}");
                    return Err(
                        forget(&ctx, &request.checkpoint_key, &options, &task, &message).await,
                    );
                }
                other => other?,
            };
            let mut output = output;
            output.usage = Some(self.usage_of(&job, &request));
            ctx.progress.report(99.0);
            Ok(output)
        }
        .await;
        result.map_err(|err| redact(err, api_key.as_deref()))
    }
}
