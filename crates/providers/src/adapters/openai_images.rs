//! `openai_images`: `POST {base_url}/images/generations`, answering `data[].url` or
//! `data[].b64_json`; the image is copied into the artifact store either way.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nosyntask_domain::TaskError;
use nosyntask_engine::ports::{
    ArtifactStore, MediaContext, MediaModel, MediaOutput, MediaRequest, ModelInfo,
};
use serde_json::{Value, json};

use super::{ResultRef, fit_size, merge_json, store_result, with_model_headers};
use crate::config::ModelConfig;
use crate::http::{HttpClient, excerpt, redact, send_json};
use crate::media::MediaKind;
use crate::profile::Profile;
use crate::profile::usage::{finish, from_response};

/// An image model behind the OpenAI images API.
pub struct OpenAiImages {
    info: ModelInfo,
    config: ModelConfig,
    http: HttpClient,
    artifacts: Arc<dyn ArtifactStore>,
    sizes: Vec<(u32, u32)>,
    profile: Profile,
}

impl OpenAiImages {
    pub fn new(
        info: ModelInfo,
        config: ModelConfig,
        http: HttpClient,
        artifacts: Arc<dyn ArtifactStore>,
    ) -> Self {
        // gpt-image-1 and dall-e-3 answer 400 for sizes outside their short lists.
        let profile = Profile::for_model(&config);
        let sizes = profile.sizes.clone();
        OpenAiImages {
            info,
            config,
            http,
            artifacts,
            sizes,
            profile,
        }
    }

    fn body(&self, request: &MediaRequest) -> Value {
        let mut body = json!({
            "model": self.config.provider_model(),
            "prompt": request.prompt,
            "n": 1,
        });
        if request.width > 0 && request.height > 0 {
            let (w, h) = fit_size(request.width, request.height, &self.sizes);
            body["size"] = json!(format!("{w}x{h}"));
        }
        if let Some(extra) = &self.config.extra_body {
            merge_json(&mut body, extra);
        }
        if request.extra.as_object().is_some_and(|m| !m.is_empty()) {
            merge_json(&mut body, &request.extra);
        }
        body
    }
}

/// The first image of an images response: its URL, or its base64 data.
pub fn first_image(body: &Value) -> Result<ResultRef, TaskError> {
    let item = body.get("data").and_then(|d| d.get(0));
    if let Some(b64) = item.and_then(|i| i.get("b64_json")).and_then(Value::as_str) {
        return Ok(ResultRef::Base64(b64.to_owned()));
    }
    if let Some(url) = item.and_then(|i| i.get("url")).and_then(Value::as_str) {
        return Ok(ResultRef::Url(url.to_owned()));
    }
    Err(TaskError::permanent(format!(
        "the images response has neither data[0].url nor data[0].b64_json: {}",
        excerpt(body.to_string().as_bytes())
    )))
}

#[async_trait]
impl MediaModel for OpenAiImages {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    async fn generate(
        &self,
        request: MediaRequest,
        ctx: MediaContext,
    ) -> Result<MediaOutput, TaskError> {
        let api_key = self.config.api_key()?;
        let url = format!("{}/images/generations", self.config.base());
        let http = self
            .http
            .inner()
            .post(&url)
            .timeout(self.info.timeout + Duration::from_secs(1))
            .json(&self.body(&request));
        let http = with_model_headers(http, &self.config.headers, api_key.as_deref());
        ctx.progress.report(5.0);
        let work = async {
            let body = send_json(http).await?;
            let result = first_image(&body)?;
            let usage = finish(
                from_response(&body),
                Some(1),
                None,
                self.profile.prices.as_ref(),
            );
            ctx.progress.report(80.0);
            let mut output = store_result(
                &self.http,
                &self.artifacts,
                result,
                MediaKind::Image,
                self.config.max_media_bytes(),
                self.info.timeout,
                &request.checkpoint_key,
            )
            .await?;
            output.usage = Some(usage);
            ctx.progress.report(99.0);
            Ok(output)
        };
        let result = tokio::select! {
            _ = ctx.cancel.cancelled() => Err(TaskError::Cancelled),
            result = work => result,
        };
        result.map_err(|e| redact(e, api_key.as_deref()))
    }
}
