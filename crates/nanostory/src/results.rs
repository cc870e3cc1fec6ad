//! NanoStory mode's writes: each workflow's results land where NanoStory's own engine wrote
//! them, in the transaction that stores the task's result (a [`TransactionHook`]), so the row
//! and the result commit together or not at all, once.
//!
//! | workflow | event | NanoStory's rows |
//! |---|---|---|
//! | `character_views_generation` | job completed / failed | `characters`: `front_view_url`, `side_view_url`, `back_view_url`, `image_url` (the front view), `generation_status` |
//! | `scene_image_generation` | job completed / failed | `scenes`: `image_url`, `generation_prompt`, `generation_status` |
//! | `frame_generation` | job completed | `storyboards`: `first_frame_url`, `last_frame_url` |
//! | `single_frame_generation` | job completed | `storyboards`: `first_frame_url` |
//! | `scene_video` | job completed | `storyboards`: `video_url` |
//! | `batch_frame_generation` | each shot completed | `storyboards`: `first_frame_url`, `last_frame_url` (`NULL` for a single frame) |
//! | `batch_scene_video_generation` | each shot completed | `storyboards`: `video_url` |
//! | `script_only` | job completed / failed | `scripts` (`scriptId`, else the project's `generating` script of `episodeNumber`): `content`, `model_provider`, `token_used`, `status` |
//! | `storyboard_generation` | job completed | `storyboards` of `scriptId` replaced by the new shots (`idx`, `prompt_template`, `variables_json`); `scenes` of the shots' locations added or completed |
//!
//! Only the job's owner's rows are written: a storyboard of a project of the job's user, a
//! character, scene or script of the job's user. A row that is not there is no error (NanoStory
//! may have deleted it while the job ran); nothing is written then.

use async_trait::async_trait;
use nosyntask_domain::{Job, Task, lenient_integer};
use nosyntask_store::{HookEvent, HookEventKind, TransactionHook};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter,
};
use serde_json::Value;

use crate::entities::sea_orm_active_enums::{GenerationStatus, Status};
use crate::entities::{characters, projects, scenes, scripts, storyboards};
use crate::media::MediaUrls;

/// Writes results into NanoStory's tables (see the module).
pub struct ResultWriter {
    media: MediaUrls,
}

impl ResultWriter {
    pub fn new(media: MediaUrls) -> Self {
        ResultWriter { media }
    }

    /// A shot's first and last frames (`startFrame`, `endFrame`) as NanoStory stores them.
    fn frames(&self, result: &Value) -> [(storyboards::Column, Option<String>); 2] {
        [
            (
                storyboards::Column::FirstFrameUrl,
                self.url(result, "startFrame"),
            ),
            (
                storyboards::Column::LastFrameUrl,
                self.url(result, "endFrame"),
            ),
        ]
    }

    /// A result's URL field as NanoStory stores it.
    fn url(&self, result: &Value, key: &str) -> Option<String> {
        result
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(|s| self.media.url(s))
    }
}

#[async_trait]
impl TransactionHook for ResultWriter {
    async fn on_event(&self, txn: &DatabaseTransaction, event: &HookEvent) -> Result<(), DbErr> {
        let job = &event.job;
        let task = event.task.as_ref();
        let result = task.and_then(|t| t.result_data.as_ref());
        let workflow = job.workflow_type.as_str();
        match (event.kind, result) {
            (HookEventKind::JobCompleted, Some(result)) => {
                self.job_completed(txn, job, workflow, result).await
            }
            (HookEventKind::JobFailed, _) => job_failed(txn, job, workflow).await,
            (HookEventKind::StepCompleted, Some(result)) if task.is_some_and(is_item) => {
                self.shot_completed(txn, job, workflow, result).await
            }
            _ => Ok(()),
        }
    }
}

impl ResultWriter {
    async fn job_completed(
        &self,
        txn: &DatabaseTransaction,
        job: &Job,
        workflow: &str,
        result: &Value,
    ) -> Result<(), DbErr> {
        let params = &job.input_params;
        match workflow {
            "character_views_generation" => {
                let Some(id) = id(params, "characterId") else {
                    return Ok(());
                };
                let front = self.url(result, "frontViewUrl");
                characters::Entity::update_many()
                    .col_expr(characters::Column::FrontViewUrl, Expr::value(front.clone()))
                    .col_expr(
                        characters::Column::SideViewUrl,
                        Expr::value(self.url(result, "sideViewUrl")),
                    )
                    .col_expr(
                        characters::Column::BackViewUrl,
                        Expr::value(self.url(result, "backViewUrl")),
                    )
                    .col_expr(characters::Column::ImageUrl, Expr::value(front))
                    .col_expr(
                        characters::Column::GenerationStatus,
                        Expr::value(GenerationStatus::Completed),
                    )
                    .col_expr(characters::Column::UpdatedAt, Expr::current_timestamp())
                    .filter(characters::Column::Id.eq(id))
                    .filter(characters::Column::UserId.eq(job.user_id))
                    .exec(txn)
                    .await?;
            }
            "scene_image_generation" => {
                let Some(id) = id(params, "sceneId") else {
                    return Ok(());
                };
                let prompt = result.get("prompt").and_then(Value::as_str);
                scenes::Entity::update_many()
                    .col_expr(
                        scenes::Column::ImageUrl,
                        Expr::value(self.url(result, "imageUrl")),
                    )
                    .col_expr(
                        scenes::Column::GenerationPrompt,
                        Expr::value(prompt.map(str::to_owned)),
                    )
                    .col_expr(
                        scenes::Column::GenerationStatus,
                        Expr::value(GenerationStatus::Completed),
                    )
                    .col_expr(scenes::Column::UpdatedAt, Expr::current_timestamp())
                    .filter(scenes::Column::Id.eq(id))
                    .filter(scenes::Column::UserId.eq(job.user_id))
                    .exec(txn)
                    .await?;
            }
            "frame_generation" => {
                let frames = self.frames(result);
                update_shot(txn, job, id(params, "storyboardId"), &frames).await?;
            }
            "single_frame_generation" => {
                let frame = self
                    .url(result, "startFrame")
                    .or_else(|| self.url(result, "imageUrl"));
                let columns = [(storyboards::Column::FirstFrameUrl, frame)];
                update_shot(txn, job, id(params, "storyboardId"), &columns).await?;
            }
            "scene_video" => {
                let columns = [(storyboards::Column::VideoUrl, self.url(result, "videoUrl"))];
                update_shot(txn, job, id(params, "storyboardId"), &columns).await?;
            }
            "script_only" => {
                let Some(script) = script_of(txn, job).await? else {
                    return Ok(());
                };
                let mut script: scripts::ActiveModel = script.into();
                let text = |key: &str| result.get(key).and_then(Value::as_str).map(str::to_owned);
                script.content = Set(text("content").unwrap_or_default());
                script.model_provider = Set(text("provider"));
                script.token_used = Set(result
                    .get("tokens")
                    .and_then(lenient_integer)
                    .and_then(|t| i32::try_from(t).ok()));
                script.status = Set(Some(Status::Completed));
                script.update(txn).await?;
            }
            "storyboard_generation" => save_storyboards(txn, job, result).await?,
            _ => {}
        }
        Ok(())
    }

    /// One shot of a batch.
    async fn shot_completed(
        &self,
        txn: &DatabaseTransaction,
        job: &Job,
        workflow: &str,
        result: &Value,
    ) -> Result<(), DbErr> {
        if result.get("status").and_then(Value::as_str) != Some("completed") {
            return Ok(());
        }
        let shot = id(result, "storyboardId");
        match workflow {
            "batch_frame_generation" => {
                let frames = self.frames(result);
                update_shot(txn, job, shot, &frames).await
            }
            "batch_scene_video_generation" => {
                let video = [(storyboards::Column::VideoUrl, self.url(result, "videoUrl"))];
                update_shot(txn, job, shot, &video).await
            }
            _ => Ok(()),
        }
    }
}

/// A failed job marks what it was making as failed, so NanoStory's pages stop waiting.
async fn job_failed(txn: &DatabaseTransaction, job: &Job, workflow: &str) -> Result<(), DbErr> {
    let params = &job.input_params;
    match workflow {
        "character_views_generation" => {
            if let Some(id) = id(params, "characterId") {
                characters::Entity::update_many()
                    .col_expr(
                        characters::Column::GenerationStatus,
                        Expr::value(GenerationStatus::Failed),
                    )
                    .filter(characters::Column::Id.eq(id))
                    .filter(characters::Column::UserId.eq(job.user_id))
                    .exec(txn)
                    .await?;
            }
        }
        "scene_image_generation" => {
            if let Some(id) = id(params, "sceneId") {
                scenes::Entity::update_many()
                    .col_expr(
                        scenes::Column::GenerationStatus,
                        Expr::value(GenerationStatus::Failed),
                    )
                    .filter(scenes::Column::Id.eq(id))
                    .filter(scenes::Column::UserId.eq(job.user_id))
                    .exec(txn)
                    .await?;
            }
        }
        "script_only" => {
            if let Some(script) = script_of(txn, job).await? {
                let mut script: scripts::ActiveModel = script.into();
                script.status = Set(Some(Status::Failed));
                script.update(txn).await?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// An item of a fan-out step (one shot of a batch), not the step's own task.
fn is_item(task: &Task) -> bool {
    task.parent_task_id.is_some()
}

/// An id param or result field (`12` or `"12"`).
fn id(value: &Value, name: &str) -> Option<i64> {
    value.get(name).and_then(lenient_integer)
}

/// `UPDATE storyboards SET … WHERE id = ?` on a shot of a project of the job's user.
async fn update_shot(
    txn: &DatabaseTransaction,
    job: &Job,
    shot: Option<i64>,
    columns: &[(storyboards::Column, Option<String>)],
) -> Result<(), DbErr> {
    let Some(shot) = shot else {
        return Ok(());
    };
    let mut update = storyboards::Entity::update_many();
    for (column, value) in columns {
        update = update.col_expr(*column, Expr::value(value.clone()));
    }
    update
        .filter(storyboards::Column::Id.eq(shot))
        .filter(storyboards::Column::ProjectId.in_subquery(projects_of(job)))
        .exec(txn)
        .await?;
    Ok(())
}

/// `SELECT id FROM projects WHERE user_id = ?`: the job's user's projects.
fn projects_of(job: &Job) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(projects::Column::Id)
        .from(projects::Entity)
        .and_where(projects::Column::UserId.eq(job.user_id))
        .to_owned()
}

/// The script a `script_only` job writes: `scriptId`, else the script NanoStory's backend
/// created for it (the project's `generating` row of the job's `episodeNumber`).
async fn script_of(txn: &DatabaseTransaction, job: &Job) -> Result<Option<scripts::Model>, DbErr> {
    let params = &job.input_params;
    let mut query = scripts::Entity::find().filter(scripts::Column::UserId.eq(job.user_id));
    if let Some(id) = id(params, "scriptId") {
        query = query.filter(scripts::Column::Id.eq(id));
    } else {
        let project = id(params, "projectId").unwrap_or(job.project_id);
        let Some(episode) = id(params, "episodeNumber") else {
            return Ok(None);
        };
        query = query
            .filter(scripts::Column::ProjectId.eq(project))
            .filter(scripts::Column::EpisodeNumber.eq(episode))
            .filter(scripts::Column::Status.eq(Status::Generating));
    }
    query.one(txn).await
}

/// What one location of a new storyboard tells its scene: the first description of a shot
/// there, and the shots' emotions.
#[derive(Default)]
struct Location {
    description: Option<String>,
    moods: Vec<String>,
}

/// `storyboard_generation`'s shots saved as NanoStory's `save_storyboards` step saved them: the
/// script's storyboards replaced (`idx` from 0, the description as `prompt_template`, the shot
/// as `variables_json`), and a scene for each location, added or completed where empty.
async fn save_storyboards(
    txn: &DatabaseTransaction,
    job: &Job,
    result: &Value,
) -> Result<(), DbErr> {
    let Some(script) = id(&job.input_params, "scriptId") else {
        return Ok(());
    };
    let Some(script) = scripts::Entity::find_by_id(i32::try_from(script).unwrap_or(-1))
        .filter(scripts::Column::UserId.eq(job.user_id))
        .one(txn)
        .await?
    else {
        return Ok(());
    };
    let shots = result
        .get("scenes")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    storyboards::Entity::delete_many()
        .filter(storyboards::Column::ScriptId.eq(script.id))
        .exec(txn)
        .await?;
    let text = |shot: &Value, key: &str| {
        shot.get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    // Locations in the order of their first shot.
    let mut locations: Vec<(String, Location)> = Vec::new();
    for (idx, shot) in shots.iter().enumerate() {
        storyboards::ActiveModel {
            project_id: Set(script.project_id),
            script_id: Set(script.id),
            idx: Set(i32::try_from(idx).unwrap_or(i32::MAX)),
            prompt_template: Set(Some(text(shot, "description").unwrap_or_default())),
            variables_json: Set(Some(shot.to_string())),
            ..Default::default()
        }
        .insert(txn)
        .await?;
        let Some(name) = text(shot, "location") else {
            continue;
        };
        let at = match locations.iter().position(|(n, _)| *n == name) {
            Some(at) => at,
            None => {
                locations.push((name, Location::default()));
                locations.len() - 1
            }
        };
        let location = &mut locations[at].1;
        if location.description.is_none() {
            location.description = text(shot, "description");
        }
        if let Some(mood) = text(shot, "emotion")
            && !location.moods.contains(&mood)
        {
            location.moods.push(mood);
        }
    }
    for (name, location) in locations {
        save_scene(txn, &script, name, location).await?;
    }
    Ok(())
}

/// A scene of the script's project named `name`: added, or its empty description and mood
/// filled in.
async fn save_scene(
    txn: &DatabaseTransaction,
    script: &scripts::Model,
    name: String,
    location: Location,
) -> Result<(), DbErr> {
    let description = location.description.unwrap_or_default();
    let mood = location.moods.join(", ");
    let existing = scenes::Entity::find()
        .filter(scenes::Column::ProjectId.eq(script.project_id))
        .filter(scenes::Column::Name.eq(name.as_str()))
        .filter(scenes::Column::UserId.eq(script.user_id))
        .one(txn)
        .await?;
    let blank = |value: &Option<String>| value.as_deref().is_none_or(str::is_empty);
    match existing {
        Some(scene) => {
            let empty_description = blank(&scene.description);
            let empty_mood = blank(&scene.mood);
            let mut scene: scenes::ActiveModel = scene.into();
            if empty_description {
                scene.description = Set(Some(description));
            }
            if empty_mood {
                scene.mood = Set(Some(mood));
            }
            scene.script_id = Set(Some(script.id));
            scene.update(txn).await?;
        }
        None => {
            scenes::ActiveModel {
                user_id: Set(script.user_id),
                project_id: Set(script.project_id),
                script_id: Set(Some(script.id)),
                name: Set(name),
                description: Set(Some(description)),
                mood: Set(Some(mood)),
                source: Set(Some("auto_extracted".to_owned())),
                ..Default::default()
            }
            .insert(txn)
            .await?;
        }
    }
    Ok(())
}
