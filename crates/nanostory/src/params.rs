//! NanoStory mode's reads: a job started with an id gets the fields its workflow needs from the
//! row the id names, as NanoStory's own engine read them (`SELECT * FROM storyboards WHERE id = ?`
//! in its frame and video handlers, a script's shots `ORDER BY idx` in its batches). What the
//! request gives wins; a row that does not exist, or is not the starter's, is refused naming
//! the id's param, the same way for both so no one learns of others' rows.

use async_trait::async_trait;
use nosyntask_domain::{ParamError, lenient_integer};
use nosyntask_engine::EngineError;
use nosyntask_engine::ports::{ParamsSource, Starter};
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Map, Value, json};

use crate::entities::{characters, projects, scenes, scripts, storyboards};

/// Completes params from NanoStory's rows (see the module).
pub struct RowParams {
    db: DatabaseConnection,
}

impl RowParams {
    /// Reads through `db`: NanoStory's database, the engine's own in NanoStory mode.
    pub fn new(db: DatabaseConnection) -> Self {
        RowParams { db }
    }

    /// The shot `id` of the starter's projects.
    async fn storyboard(
        &self,
        starter: Starter,
        id: i64,
    ) -> Result<Option<storyboards::Model>, DbErr> {
        let Some(shot) = storyboards::Entity::find_by_id(to_i32(id))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        Ok(self
            .owns_project(starter, shot.project_id)
            .await?
            .then_some(shot))
    }

    async fn owns_project(&self, starter: Starter, project: i32) -> Result<bool, DbErr> {
        let project = projects::Entity::find_by_id(project).one(&self.db).await?;
        Ok(project.is_some_and(|p| i64::from(p.user_id) == starter.user_id))
    }

    async fn fill(
        &self,
        workflow_type: &str,
        starter: Starter,
        params: &mut Map<String, Value>,
    ) -> Result<(), Refusal> {
        match workflow_type {
            "scene_video" | "frame_generation" | "single_frame_generation" => {
                let Some(id) = id_param(params, "storyboardId") else {
                    return Ok(());
                };
                let shot = self.storyboard(starter, id).await?.ok_or(Refusal::Missing(
                    "storyboardId",
                    "storyboard",
                    id,
                ))?;
                let text = match workflow_type {
                    "frame_generation" => "prompt",
                    _ => "description",
                };
                let given_prompt = is_given(params.get("prompt"));
                if !given_prompt {
                    fill_missing(params, text, shot.prompt_template.clone());
                }
                if workflow_type == "scene_video" {
                    fill_missing(params, "startFrame", shot.first_frame_url.clone());
                    fill_missing(params, "endFrame", shot.last_frame_url.clone());
                    // A length the clip can have (1–10 s, whole seconds), else the default.
                    let duration = variables(&shot)
                        .get("duration")
                        .and_then(lenient_integer)
                        .filter(|d| (1..=10).contains(d));
                    fill_missing(params, "duration", duration);
                }
            }
            "character_views_generation" => {
                let Some(id) = id_param(params, "characterId") else {
                    return Ok(());
                };
                let character = characters::Entity::find_by_id(to_i32(id))
                    .one(&self.db)
                    .await?
                    .filter(|c| i64::from(c.user_id) == starter.user_id)
                    .ok_or(Refusal::Missing("characterId", "character", id))?;
                fill_missing(params, "characterName", Some(character.name));
                fill_missing(params, "appearance", character.appearance);
                fill_missing(params, "personality", character.personality);
                fill_missing(params, "description", character.description);
            }
            "scene_image_generation" => {
                let Some(id) = id_param(params, "sceneId") else {
                    return Ok(());
                };
                let scene = scenes::Entity::find_by_id(to_i32(id))
                    .one(&self.db)
                    .await?
                    .filter(|s| i64::from(s.user_id) == starter.user_id)
                    .ok_or(Refusal::Missing("sceneId", "scene", id))?;
                fill_missing(params, "sceneName", Some(scene.name));
                fill_missing(params, "description", scene.description);
                fill_missing(params, "environment", scene.environment);
                fill_missing(params, "lighting", scene.lighting);
                fill_missing(params, "mood", scene.mood);
            }
            "storyboard_generation" | "batch_frame_generation" | "batch_scene_video_generation" => {
                let Some(id) = id_param(params, "scriptId") else {
                    return Ok(());
                };
                let script = scripts::Entity::find_by_id(to_i32(id))
                    .one(&self.db)
                    .await?
                    .filter(|s| i64::from(s.user_id) == starter.user_id)
                    .ok_or(Refusal::Missing("scriptId", "script", id))?;
                if workflow_type == "storyboard_generation" {
                    fill_missing(params, "scriptContent", Some(script.content));
                    fill_missing(params, "scriptTitle", script.title);
                } else if !is_given(params.get("storyboards")) {
                    let shots = storyboards::Entity::find()
                        .filter(storyboards::Column::ScriptId.eq(script.id))
                        .order_by_asc(storyboards::Column::Idx)
                        .order_by_asc(storyboards::Column::Id)
                        .all(&self.db)
                        .await?;
                    let shots: Vec<Value> = shots.iter().map(shot_json).collect();
                    params.insert("storyboards".into(), Value::Array(shots));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[async_trait]
impl ParamsSource for RowParams {
    async fn complete(
        &self,
        workflow_type: &str,
        starter: Starter,
        params: Value,
    ) -> Result<Value, EngineError> {
        // Anything but an object is left for the schema to refuse.
        let Value::Object(mut params) = params else {
            return Ok(params);
        };
        match self.fill(workflow_type, starter, &mut params).await {
            Ok(()) => Ok(Value::Object(params)),
            Err(Refusal::Missing(param, what, id)) => Err(EngineError::InvalidParams(
                ParamError::new(param, format!("no {what} {id} in your projects"))
                    .zh(format!("你的项目中没有 ID 为 {id} 的记录")),
            )),
            Err(Refusal::Database(err)) => Err(EngineError::Unavailable(format!(
                "cannot read NanoStory's tables: {err}"
            ))),
        }
    }
}

/// Why params cannot be completed.
enum Refusal {
    /// (param, what it names, id): no such row of the starter's.
    Missing(&'static str, &'static str, i64),
    Database(DbErr),
}

impl From<DbErr> for Refusal {
    fn from(err: DbErr) -> Self {
        Refusal::Database(err)
    }
}

/// NanoStory's ids are `INT` (and positive): a larger one names no row, and neither does -1.
fn to_i32(id: i64) -> i32 {
    i32::try_from(id).unwrap_or(-1)
}

/// An id param as the engine reads it (`12` or `"12"`); anything else is left to the schema.
fn id_param(params: &Map<String, Value>, name: &str) -> Option<i64> {
    params.get(name).and_then(lenient_integer)
}

/// A value the request gave: not absent, `null` or a blank string.
fn is_given(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(_) => true,
    }
}

/// Sets `name` from the row's `value` unless the request gave it or the row has nothing.
fn fill_missing(params: &mut Map<String, Value>, name: &str, value: Option<impl Into<Value>>) {
    if is_given(params.get(name)) {
        return;
    }
    let value: Option<Value> = value.map(Into::into);
    if is_given(value.as_ref()) {
        params.insert(name.to_owned(), value.unwrap_or_default());
    }
}

/// A shot's `variables_json`: the shot as `storyboard_generation` described it.
fn variables(shot: &storyboards::Model) -> Map<String, Value> {
    shot.variables_json
        .as_deref()
        .and_then(|text| serde_json::from_str::<Value>(text).ok())
        .and_then(|value| match value {
            Value::Object(map) => Some(map),
            _ => None,
        })
        .unwrap_or_default()
}

/// A shot as the batch workflows take it.
fn shot_json(shot: &storyboards::Model) -> Value {
    let vars = variables(shot);
    json!({
        "id": shot.id,
        "prompt": shot.prompt_template,
        "hasAction": vars.get("hasAction").and_then(Value::as_bool).unwrap_or(false),
        "startFrame": shot.first_frame_url,
        "endFrame": shot.last_frame_url,
        "videoUrl": shot.video_url,
        "duration": vars.get("duration").and_then(lenient_integer),
    })
}
