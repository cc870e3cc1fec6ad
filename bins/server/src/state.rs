//! What every handler shares ([`AppState`]): the engine facade, coalesced reads, live watching,
//! the model catalogue and the artifact store, with the helpers that turn engine answers into
//! HTTP ones.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse};
use futures::StreamExt;
use nosyntask_artifacts::Artifacts;
use nosyntask_domain::{Job as DomainJob, Viewer};
use nosyntask_engine::ports::ModelCatalog;
use nosyntask_engine::{Engine, EngineError, WorkflowDefinition};
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::i18n::Lang;
use crate::reads::JobReads;
use crate::views::{Job, JobList, JobSummary};

/// Jobs of a list whose tasks are read at the same time.
const LIST_READS_AT_ONCE: usize = 8;

/// Event stream timing.
#[derive(Debug, Clone, Copy)]
pub struct EventTiming {
    /// How often a stream re-reads its job.
    pub poll: Duration,
    /// Longest silence before a keep-alive comment.
    pub keepalive: Duration,
}

/// The address a request reached the server at (`http://host:port`, following `Forwarded` /
/// `X-Forwarded-*` behind a proxy): media URLs of job reads are made absolute with it when no
/// `artifacts.public_base_url` is configured.
pub fn own_base(req: &HttpRequest) -> String {
    let info = req.connection_info();
    format!("{}://{}", info.scheme(), info.host())
}

/// What handlers share.
pub struct AppState {
    pub engine: Engine,
    /// Coalesced job reads (status polling, event streams).
    pub reads: Arc<JobReads>,
    /// Live watching of jobs, shared by every event stream of the process.
    pub watch: Arc<crate::watch::JobWatch>,
    pub models: Arc<dyn ModelCatalog>,
    /// Generated media: served under `/files/`, and the URLs job reads carry.
    pub artifacts: Arc<Artifacts>,
    pub events: EventTiming,
    /// `Retry-After` of a quota answer.
    pub quota_retry_after_secs: u64,
    /// The store's event outbox: the webhook delivery log and redelivery.
    pub outbox: Arc<nosyntask_store::Store>,
    /// Fires when the server starts shutting down: event streams end, readiness fails.
    pub shutdown: CancellationToken,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// `json` with its artifact references replaced by URLs that load now for this request's
    /// reader (absolute at `public_base_url`, or at the address the request reached).
    pub async fn with_links(&self, req: &HttpRequest, json: &[u8]) -> Vec<u8> {
        let own = own_base(req);
        nosyntask_artifacts::links::rewrite_json(&self.artifacts, json, Some(&own)).await
    }

    /// A JSON response of `value` with working artifact URLs.
    pub async fn json_with_links<T: serde::Serialize>(
        &self,
        req: &HttpRequest,
        status: actix_web::http::StatusCode,
        value: &T,
    ) -> Result<HttpResponse, ApiError> {
        let body = serde_json::to_vec(value).map_err(ApiError::internal)?;
        let body = self.with_links(req, &body).await;
        Ok(HttpResponse::build(status)
            .content_type("application/json")
            .body(body))
    }

    /// The HTTP error of an engine error.
    pub fn error(&self, err: EngineError) -> ApiError {
        ApiError::from_engine(err, self.quota_retry_after_secs)
    }

    /// The definition of a registered workflow type.
    pub fn definition(&self, workflow_type: &str) -> Option<&WorkflowDefinition> {
        self.engine
            .registry()
            .get(workflow_type)
            .map(|definition| definition.as_ref())
    }

    /// List views of jobs, with their tasks when `with_tasks` (read a few jobs at a time; a job
    /// pruned in between is left out).
    pub async fn job_list(
        &self,
        viewer: &Viewer,
        jobs: &[DomainJob],
        with_tasks: bool,
        lang: Lang,
    ) -> Result<JobList, ApiError> {
        if !with_tasks {
            let jobs = jobs
                .iter()
                .map(|job| JobSummary::new(job, self.definition(&job.workflow_type), lang).into())
                .collect();
            return Ok(JobList::of(jobs));
        }
        let reads = futures::stream::iter(jobs.iter().map(|job| self.engine.get(viewer, job.id)))
            .buffered(LIST_READS_AT_ONCE)
            .collect::<Vec<_>>()
            .await;
        let mut listed = Vec::with_capacity(reads.len());
        for read in reads {
            match read {
                Ok(job) => listed
                    .push(Job::new(&job, self.definition(&job.job.workflow_type), lang).into()),
                Err(EngineError::NotFound(_)) => {}
                Err(err) => return Err(self.error(err)),
            }
        }
        Ok(JobList::of(listed))
    }
}
