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
    ArtifactStore, MediaContext, MediaModel, MediaOutput, MediaRequest, ModelInfo, ModelKind,
};

use super::{fit_duration, fit_size, store_result};
use crate::config::{ModelConfig, parse_size};
use crate::http::{HttpClient, redact};
use crate::media::MediaKind;
use crate::poll::{PollOptions, submit_and_poll};
use crate::presets;
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
    sizes: Vec<(u32, u32)>,
    durations: Vec<u32>,
}

impl AsyncTaskModel {
    pub fn new(
        info: ModelInfo,
        config: ModelConfig,
        http: HttpClient,
        artifacts: Arc<dyn ArtifactStore>,
    ) -> Result<Self, KeyError> {
        let spec = AsyncTaskSpec::from_model(&config)?;
        let (preset_sizes, preset_durations) = presets::limits(config.adapter);
        let sizes = if config.sizes.is_empty() {
            preset_sizes.iter().filter_map(|s| parse_size(s)).collect()
        } else {
            config.sizes.iter().filter_map(|s| parse_size(s)).collect()
        };
        let durations = if config.durations.is_empty() {
            preset_durations.to_vec()
        } else {
            config.durations.clone()
        };
        Ok(AsyncTaskModel {
            info,
            config,
            spec,
            http,
            artifacts,
            sizes,
            durations,
        })
    }

    fn media_kind(&self) -> MediaKind {
        match self.info.kind {
            ModelKind::Video => MediaKind::Video,
            _ => MediaKind::Image,
        }
    }

    fn vars(&self, request: &MediaRequest, api_key: Option<&str>) -> Vars {
        let (width, height) = fit_size(request.width, request.height, &self.sizes);
        let mut vars = Vars::new();
        vars.set_text("prompt", request.prompt.clone())
            .set_opt("negative_prompt", request.negative_prompt.as_deref())
            .set_text("model", self.config.provider_model())
            .set_text("base_url", self.config.base())
            .set_opt("image_url", request.image_url.as_deref())
            .set_opt("end_image_url", request.end_image_url.as_deref())
            .set_opt("api_key", api_key);
        if width > 0 && height > 0 {
            vars.set("width", Var::Number(width.into()))
                .set("height", Var::Number(height.into()))
                .set_text("size", format!("{width}x{height}"));
        }
        if let Some(duration) = request.duration_secs.filter(|d| *d > 0) {
            vars.set(
                "duration",
                Var::Number(fit_duration(duration, &self.durations).into()),
            );
        }
        vars
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
            vars: self.vars(&request, api_key.as_deref()),
            extra: request.extra.clone(),
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
            let output = store_result(
                &self.http,
                &self.artifacts,
                result,
                self.media_kind(),
                self.config.max_media_bytes(),
                self.info.timeout,
                &request.checkpoint_key,
            )
            .await?;
            ctx.progress.report(99.0);
            Ok(output)
        }
        .await;
        result.map_err(|err| redact(err, api_key.as_deref()))
    }
}
