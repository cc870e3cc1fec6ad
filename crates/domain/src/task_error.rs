use std::time::Duration;

/// Why a step handler did not produce a result. The engine retries `Retryable` errors with
/// backoff up to the step's max attempts and fails the job at once on `Permanent` ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// A passing failure: timeout, connection error, HTTP 5xx or 429. `retry_after` is the
    /// earliest time the provider asked us to come back (from a `Retry-After` header).
    #[error("{message}")]
    Retryable {
        message: String,
        retry_after: Option<Duration>,
    },
    /// A failure that will not go away by trying again: bad params, HTTP 4xx, quota exhausted,
    /// model output that cannot be parsed.
    #[error("{message}")]
    Permanent { message: String },
    /// The job was cancelled while the handler ran; nothing is recorded for this attempt.
    #[error("cancelled")]
    Cancelled,
}

impl TaskError {
    pub fn retryable(message: impl Into<String>) -> Self {
        TaskError::Retryable {
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn retry_after(message: impl Into<String>, after: Duration) -> Self {
        TaskError::Retryable {
            message: message.into(),
            retry_after: Some(after),
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        TaskError::Permanent {
            message: message.into(),
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, TaskError::Retryable { .. })
    }

    /// Adds context in front of the message, keeping the kind.
    pub fn context(self, context: &str) -> Self {
        match self {
            TaskError::Retryable {
                message,
                retry_after,
            } => TaskError::Retryable {
                message: format!("{context}: {message}"),
                retry_after,
            },
            TaskError::Permanent { message } => TaskError::Permanent {
                message: format!("{context}: {message}"),
            },
            TaskError::Cancelled => TaskError::Cancelled,
        }
    }
}
