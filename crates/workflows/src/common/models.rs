//! The models a workflow uses, named the way NanoStory's frontend names them: `textModel`,
//! `imageModel`, `videoModel` (its field table forbids `modelName`), with `modelName` kept as an
//! alias of the workflow's main kind. Every name is resolved when the job starts, so an unknown
//! model or one of the wrong kind is refused with 422 naming the field, and the resolved name
//! (the default included) is what the steps run with and what the task records.

use std::sync::Arc;

use nosyntask_domain::{ParamError, ParamKind, ParamSpec, ParamsSchema};
use nosyntask_engine::ports::{ModelCatalog, ModelKind};
use serde_json::{Map, Value};

use super::input::non_empty;

/// `modelName`: the alias of the main kind's field.
pub(crate) const MODEL_NAME: &str = "modelName";

/// The kinds of model a workflow calls: `main` is the one `modelName` stands for and the one its
/// (last) step records as the task's model.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Uses {
    pub main: ModelKind,
    pub also: Option<ModelKind>,
}

impl Uses {
    /// A workflow that calls models of one kind.
    pub(crate) const fn only(main: ModelKind) -> Self {
        Uses { main, also: None }
    }

    /// A workflow that calls a `main` model and an `also` model.
    pub(crate) const fn with(main: ModelKind, also: ModelKind) -> Self {
        Uses {
            main,
            also: Some(also),
        }
    }

    fn kinds(self) -> impl Iterator<Item = ModelKind> {
        std::iter::once(self.main).chain(self.also)
    }
}

/// The param that names a model of `kind`.
pub(crate) fn field(kind: ModelKind) -> &'static str {
    match kind {
        ModelKind::Text => "textModel",
        ModelKind::Image => "imageModel",
        ModelKind::Video => "videoModel",
    }
}

/// Adds the typed model fields of `uses`, and `modelName` as the alias of the main one.
pub(crate) fn declare(mut schema: ParamsSchema, uses: Uses) -> ParamsSchema {
    for kind in uses.kinds() {
        schema = schema.param(
            ParamSpec::new(
                field(kind),
                ParamKind::String,
                &format!(
                    "Name of a configured {kind} model (GET /api/models); the default {kind} \
                     model when absent or empty."
                ),
            )
            .max_length(200)
            .listed_in(&list(kind)),
        );
    }
    schema.param(
        ParamSpec::new(
            MODEL_NAME,
            ParamKind::String,
            &format!(
                "Alias of {} (used when that field is absent): a configured {} model.",
                field(uses.main),
                uses.main
            ),
        )
        .max_length(200)
        .listed_in(&list(uses.main)),
    )
}

/// The name of the list of `kind`'s configured models (see [`ParamSpec::listed_in`]): a field
/// declared here takes one of them, or an empty string (or nothing) for the kind's default.
pub fn list(kind: ModelKind) -> String {
    format!("{kind} models")
}

/// The start-time check of [`declare`]d fields: each used kind's field is set to the resolved
/// model's name, and `modelName` to the main kind's.
pub(crate) fn resolver(
    models: Arc<dyn ModelCatalog>,
    uses: Uses,
) -> impl Fn(Value) -> Result<Value, ParamError> + Send + Sync + 'static {
    move |params| resolve(models.as_ref(), uses, params)
}

fn resolve(catalog: &dyn ModelCatalog, uses: Uses, params: Value) -> Result<Value, ParamError> {
    let mut params = match params {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    // `modelName` names a model of the main kind even where the typed field wins over it: a
    // name that is no such model is refused either way.
    if let Some((given_as, name)) = named(&params, MODEL_NAME) {
        check(catalog, uses.main, given_as, &name)?;
    }
    for kind in uses.kinds() {
        let typed = field(kind);
        let named = named(&params, typed).or_else(|| {
            (kind == uses.main)
                .then(|| named(&params, MODEL_NAME))
                .flatten()
        });
        let name = match named {
            Some((given_as, name)) => check(catalog, kind, given_as, &name)?,
            None => match default_of(catalog, kind) {
                Ok(name) => name,
                // A secondary model may not be needed (scene_video writes a prompt only when
                // given none), so its missing default fails the step that needs it, if any.
                Err(_) if kind != uses.main => continue,
                Err(err) => return Err(err),
            },
        };
        params.insert(typed.to_owned(), Value::String(name));
    }
    let main = params.get(field(uses.main)).cloned().unwrap_or(Value::Null);
    params.insert(MODEL_NAME.to_owned(), main);
    Ok(Value::Object(params))
}

/// The model name given in `key`, with the key, if one is given.
fn named(params: &Map<String, Value>, key: &'static str) -> Option<(&'static str, String)> {
    non_empty(params.get(key).and_then(Value::as_str)).map(|name| (key, name.to_owned()))
}

fn check(
    catalog: &dyn ModelCatalog,
    kind: ModelKind,
    field: &str,
    name: &str,
) -> Result<String, ParamError> {
    let models = catalog.list();
    let of_kind = || {
        models
            .iter()
            .filter(|m| m.kind == kind)
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match models.iter().find(|m| m.name == name) {
        Some(model) if model.kind == kind => Ok(model.name.clone()),
        Some(model) => Err(ParamError::new(
            field,
            format!(
                "`{name}` is a {} model, not a {kind} model; configured {kind} models: {}",
                model.kind,
                of_kind()
            ),
        )
        .zh(format!(
            "“{name}” 是{}模型，不是{}模型；可用的{}模型：{}",
            kind_zh(model.kind),
            kind_zh(kind),
            kind_zh(kind),
            of_kind()
        ))),
        None => Err(ParamError::new(
            field,
            format!(
                "unknown model `{name}`; configured {kind} models: {}",
                of_kind()
            ),
        )
        .zh(format!(
            "未知模型“{name}”；可用的{}模型：{}",
            kind_zh(kind),
            of_kind()
        ))),
    }
}

fn default_of(catalog: &dyn ModelCatalog, kind: ModelKind) -> Result<String, ParamError> {
    let name = match kind {
        ModelKind::Text => catalog.text(None).map(|m| m.info().name.clone()),
        ModelKind::Image => catalog.image(None).map(|m| m.info().name.clone()),
        ModelKind::Video => catalog.video(None).map(|m| m.info().name.clone()),
    };
    name.map_err(|_| {
        ParamError::new(
            field(kind),
            format!("no {kind} model is configured; configure one or name one"),
        )
        .zh(format!("未配置{}模型", kind_zh(kind)))
    })
}

fn kind_zh(kind: ModelKind) -> &'static str {
    match kind {
        ModelKind::Text => "文本",
        ModelKind::Image => "图片",
        ModelKind::Video => "视频",
    }
}

/// A step input builder's helper: `input` with `modelName` set to the resolved model of `kind`,
/// so the task records the model that step calls.
pub(crate) fn recording(mut input: Value, job_params: &Value, kind: ModelKind) -> Value {
    if let (Value::Object(map), Some(name)) = (&mut input, job_params.get(field(kind))) {
        map.insert(MODEL_NAME.to_owned(), name.clone());
    }
    input
}
