//! `character_extraction` (角色提取) and `scene_extraction` (场景提取): the characters or the
//! locations of a script, read from its text or from its storyboard shots.
//!
//! Both run the same way, told apart by an [`Extraction`] kind. Phases: 5 % started, 10 % model
//! chosen, 10–85 % the model answers (a second request when the answer was cut off, a repair
//! request when it is not valid JSON), 85–99 % duplicates are merged.

pub(crate) mod characters;
pub(crate) mod scenes;
mod source;

use std::marker::PhantomData;
use std::sync::Arc;

use async_trait::async_trait;
use nosyntask_domain::{ParamKind, ParamSpec, ParamsSchema, TaskError};
use nosyntask_engine::ports::{ModelCatalog, ModelKind};
use nosyntask_engine::{StepDefinition, StepHandler, StepRun, WorkflowDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::common::language::Language;
use crate::common::llm::{JsonQuestion, ask_json};
use crate::common::models::{self, Uses};
use crate::common::steps::{TEXT_TIMEOUT, single_step};
use crate::common::{list, params};

pub(crate) use source::Source;

/// What one extraction workflow extracts.
pub(crate) trait Extraction: Send + Sync + 'static {
    /// The item type, named by its `name` field.
    type Item: Named + Serialize + DeserializeOwned + Send;
    /// The workflow type.
    const WORKFLOW: &'static str;
    /// The display name.
    const NAME: &'static str;
    /// `generation_tasks.task_type`.
    const TASK_TYPE: &'static str;
    /// The result's list key (`characters`, `scenes`).
    const RESULT_KEY: &'static str;
    /// Other keys models put the list under.
    const LIST_KEYS: &'static [&'static str];
    /// What is asked, for messages.
    const TASK: &'static str;

    fn system(language: Language) -> String;
    fn user(source: &str, from_shots: bool, language: Language) -> String;
    fn example(language: Language) -> Value;
}

/// An extracted item with a name; items of the same name are one.
pub(crate) trait Named {
    fn name(&self) -> &str;
    /// Fills this item's empty fields from `other`, a duplicate.
    fn absorb(&mut self, other: Self);
}

/// Params: **scriptContent** or **scenes**, projectId, scriptId, modelName.
pub(crate) fn params() -> ParamsSchema {
    let schema = ParamsSchema::new()
        .param(params::script("scriptContent"))
        .param(
            ParamSpec::new(
                "scenes",
                ParamKind::Array,
                "Storyboard shots to read instead of the script (the storyboard's `scenes`).",
            )
            .records(),
        )
        .param(params::id("projectId", "The NanoStory project."))
        .param(params::id(
            "scriptId",
            "The script; one extraction per script runs at a time.",
        ))
        .param(params::think(None))
        .require_any_of(&["scriptContent", "scenes"]);
    models::declare(schema, Uses::only(ModelKind::Text))
}

pub(crate) fn definition<E: Extraction>(models: Arc<dyn ModelCatalog>) -> WorkflowDefinition {
    let params = params();
    let step = single_step(
        E::TASK_TYPE,
        "script",
        handler::<E>(models.clone()),
        &params,
        TEXT_TIMEOUT,
    );
    WorkflowDefinition::new(E::WORKFLOW, E::NAME, params)
        .step(step)
        .unique_by_param("scriptId")
        .prepare(models::resolver(models, Uses::only(ModelKind::Text)))
}

/// The handler of extraction `E`, also a step of `script_to_storyboard`.
pub(crate) fn handler<E: Extraction>(models: Arc<dyn ModelCatalog>) -> Arc<ExtractionHandler<E>> {
    Arc::new(ExtractionHandler {
        models,
        kind: PhantomData,
    })
}

/// A step definition running extraction `E` (for multi-step workflows).
pub(crate) fn step<E: Extraction>(models: Arc<dyn ModelCatalog>) -> StepDefinition {
    single_step(
        E::TASK_TYPE,
        "script",
        handler::<E>(models),
        &params(),
        TEXT_TIMEOUT,
    )
}

/// Runs extraction `E`.
pub(crate) struct ExtractionHandler<E> {
    models: Arc<dyn ModelCatalog>,
    kind: PhantomData<fn() -> E>,
}

#[async_trait]
impl<E: Extraction> StepHandler for ExtractionHandler<E> {
    async fn run(&self, run: StepRun) -> Result<Value, TaskError> {
        let source = Source::from_input(&run.input)?;
        run.progress.report(5.0);
        let model = self.models.text(source.model_name.as_deref())?;
        run.progress.report(10.0);
        let language = Language::detect(&source.text);
        let question = JsonQuestion {
            task: E::TASK,
            system: E::system(language),
            user: E::user(&source.text, source.from_shots, language),
            example: E::example(language),
            max_tokens: 4_096,
            temperature: 0.2,
            think: source.think,
        };
        let answer = ask_json(
            &model,
            &question,
            |value| list::typed_items::<E::Item>(value, E::LIST_KEYS, "name"),
            &run.progress.scaled(10.0, 85.0),
            &run.cancel,
        )
        .await?;
        run.progress.report(90.0);
        let items = merge_duplicates(answer.value);
        tracing::info!(
            task = E::TASK,
            items = items.len(),
            tokens = answer.usage.total(),
            model = %answer.usage.model,
            "extraction done"
        );
        let mut result = json!({
            "count": items.len(),
            "tokens": answer.usage.total(),
            "provider": answer.usage.provider,
        });
        result[E::RESULT_KEY] = serde_json::to_value(&items)
            .map_err(|err| TaskError::permanent(format!("{}: {err}", E::TASK)))?;
        Ok(result)
    }
}

/// Drops nameless items and merges items of the same name (ignoring case and spacing), keeping
/// the first one's place.
pub(crate) fn merge_duplicates<T: Named>(items: Vec<T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for item in items {
        let key = name_key(item.name());
        if key.is_empty() {
            continue;
        }
        match out.iter_mut().find(|kept| name_key(kept.name()) == key) {
            Some(kept) => kept.absorb(item),
            None => out.push(item),
        }
    }
    out
}

fn name_key(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Fills `into` from `from` when `into` is empty.
pub(crate) fn fill(into: &mut String, from: String) {
    if into.is_empty() {
        *into = from;
    }
}
