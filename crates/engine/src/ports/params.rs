//! Params an embedding application completes from its own rows before a job starts: NanoStory's
//! frontend starts `scene_video` with a `storyboardId` alone, and NanoStory's engine read the
//! shot's prompt and frames from its `storyboards` table.

use async_trait::async_trait;
use nosyntask_domain::{ProjectId, UserId};
use serde_json::Value;

use crate::engine::EngineError;

/// Who starts the job: the rows a source reads must be theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Starter {
    pub user_id: UserId,
    pub project_id: ProjectId,
}

/// Completes a job's params before they are checked against its workflow's schema. Fields the
/// request gives win over what the source reads; a source that finds no row (or one of another
/// user) answers [`EngineError::InvalidParams`] naming the id's param.
#[async_trait]
pub trait ParamsSource: Send + Sync {
    async fn complete(
        &self,
        workflow_type: &str,
        starter: Starter,
        params: Value,
    ) -> Result<Value, EngineError>;
}
