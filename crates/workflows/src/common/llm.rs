//! Asking a text model for JSON: one request with the provider's JSON mode and an example of the
//! wanted shape, a second one with a larger budget when the answer was cut off at the token limit,
//! recovery of sloppy output (think blocks, fences, prose, trailing commas) through the providers'
//! JSON recovery, and at most one repair request when the answer still cannot be read.

use std::sync::Arc;

use nosyntask_domain::TaskError;
use nosyntask_engine::CancellationToken;
use nosyntask_engine::ProgressReporter;
use nosyntask_engine::ports::{ChatMessage, TextModel, TextRequest, TextResponse, TokenUsage};
use serde_json::Value;

/// The most tokens a truncated answer is retried with.
const MAX_TOKENS_CEILING: u32 = 16_384;
/// How much of a broken answer a repair request or an error message quotes.
const QUOTE_CHARS: usize = 12_000;

/// One JSON question to a text model.
#[derive(Debug, Clone)]
pub(crate) struct JsonQuestion {
    /// What is asked, for messages (`storyboard`, `character extraction`).
    pub task: &'static str,
    pub system: String,
    pub user: String,
    /// The wanted shape; sent as the request's `json_example` and quoted in a repair request.
    pub example: Value,
    pub max_tokens: u32,
    pub temperature: f32,
    /// The request's deep-thinking flag (`think`), passed through to the provider.
    pub think: Option<bool>,
}

/// A parsed answer with what it cost.
#[derive(Debug, Clone)]
pub(crate) struct JsonAnswer<T> {
    pub value: T,
    pub usage: Usage,
}

/// Token usage added up over the calls of one step, with who answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    pub tokens: TokenUsage,
    /// The configured model name that answered last.
    pub model: String,
    /// The provider (adapter) that answered last.
    pub provider: String,
}

impl Usage {
    /// Adds one response's usage.
    pub(crate) fn add(&mut self, response: &TextResponse) {
        self.tokens += response.usage;
        self.model.clone_from(&response.model);
        self.provider.clone_from(&response.provider);
    }

    /// Total tokens, the result's `tokens` field. Some providers omit `total_tokens`.
    pub(crate) fn total(&self) -> u64 {
        self.tokens
            .total_tokens
            .max(self.tokens.prompt_tokens + self.tokens.completion_tokens)
    }
}

/// Asks `question`, and turns the answer into `T` with `convert` (which says what is wrong when
/// the JSON has the wrong shape). Progress runs through `progress` 0–100.
pub(crate) async fn ask_json<T>(
    model: &Arc<dyn TextModel>,
    question: &JsonQuestion,
    convert: impl Fn(Value) -> Result<T, String>,
    progress: &ProgressReporter,
    cancel: &CancellationToken,
) -> Result<JsonAnswer<T>, TaskError> {
    let mut usage = Usage::default();
    progress.report(0.0);
    let mut request = TextRequest {
        messages: vec![
            ChatMessage::system(question.system.clone()),
            ChatMessage::user(question.user.clone()),
        ],
        temperature: Some(question.temperature),
        max_tokens: Some(question.max_tokens),
        think: question.think,
        ..TextRequest::default()
    }
    .json(question.example.clone());
    let mut response = complete(model, &request, &mut usage, cancel).await?;
    if response.is_truncated() {
        progress.report(40.0);
        let budget = question
            .max_tokens
            .saturating_mul(2)
            .min(MAX_TOKENS_CEILING);
        tracing::warn!(
            task = question.task,
            model = %response.model,
            max_tokens = question.max_tokens,
            "answer cut off at the token limit; asking again with max_tokens {budget}"
        );
        request.max_tokens = Some(budget.max(question.max_tokens));
        request.messages.push(ChatMessage::user(CONCISE_AGAIN));
        response = complete(model, &request, &mut usage, cancel).await?;
        if response.is_truncated() {
            return Err(TaskError::permanent(format!(
                "{}: the model's answer was cut off at its token limit twice \
                 (finish_reason=length, max_tokens {}); shorten the input or choose a model \
                 with a larger output limit",
                question.task,
                request.max_tokens.unwrap_or_default()
            )));
        }
    }
    progress.report(70.0);
    let first_error = match read(&response.content, &convert) {
        Ok(value) => return Ok(JsonAnswer { value, usage }),
        Err(err) => err,
    };
    tracing::warn!(
        task = question.task,
        model = %response.model,
        error = %first_error,
        "model answer is not usable JSON; asking the model to repair it"
    );
    let repair = repair_request(question, &response.content, &first_error);
    let repaired = complete(model, &repair, &mut usage, cancel).await?;
    progress.report(95.0);
    match read(&repaired.content, &convert) {
        Ok(value) => Ok(JsonAnswer { value, usage }),
        Err(err) => Err(TaskError::permanent(format!(
            "{}: could not read the model's answer as JSON: {first_error}; a repair request did \
             not help: {err}",
            question.task
        ))),
    }
}

const CONCISE_AGAIN: &str = "Your previous answer was cut off at the length limit. Answer again \
     from the start, complete and valid, and keep every text value short.";

async fn complete(
    model: &Arc<dyn TextModel>,
    request: &TextRequest,
    usage: &mut Usage,
    cancel: &CancellationToken,
) -> Result<TextResponse, TaskError> {
    let response = model.complete(request.clone(), cancel).await?;
    usage.add(&response);
    Ok(response)
}

/// Recovers the JSON in `content` and converts it. Of several JSON values in the answer (an
/// example, a `[1]` note, the answer), the first that converts is taken.
fn read<T>(content: &str, convert: &impl Fn(Value) -> Result<T, String>) -> Result<T, String> {
    let value = nosyntask_providers::recover_json_matching(content, |v| convert(v.clone()).is_ok())
        .map_err(|err| err.to_string())?;
    convert(value)
}

fn repair_request(question: &JsonQuestion, broken: &str, error: &str) -> TextRequest {
    let system = "You repair malformed JSON. Answer with the corrected JSON only: no prose, no \
                  code fences, no comments. Keep every value the input has; drop only an item \
                  that is cut off and cannot be completed.";
    let user = format!(
        "This answer should be JSON shaped like this example:\n{example}\n\nIt could not be \
         read ({error}). Return it as valid JSON of that shape.\n\nThe answer:\n{broken}",
        example = question.example,
        broken = quote(broken, QUOTE_CHARS),
    );
    TextRequest {
        messages: vec![ChatMessage::system(system), ChatMessage::user(user)],
        temperature: Some(0.0),
        max_tokens: Some(
            question
                .max_tokens
                .saturating_mul(2)
                .min(MAX_TOKENS_CEILING),
        ),
        ..TextRequest::default()
    }
    .json(question.example.clone())
}

/// The first `max` characters of `text`.
fn quote(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}
