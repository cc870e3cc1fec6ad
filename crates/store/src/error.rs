//! Classifying database errors into what a caller can act on, and retrying transactions that
//! lost a deadlock or a lock race.

use std::future::Future;
use std::time::Duration;

use nosyntask_engine::StoreError;
use sea_orm::{DbErr, RuntimeErr};
use tracing::debug;

/// An operation's failure: a database error still to be classified, or a decided outcome.
#[derive(Debug)]
pub(crate) enum Error {
    Db(DbErr),
    Store(StoreError),
}

impl From<DbErr> for Error {
    fn from(err: DbErr) -> Self {
        Error::Db(err)
    }
}

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Self {
        Error::Store(err)
    }
}

impl From<Error> for StoreError {
    fn from(err: Error) -> Self {
        match err {
            Error::Db(err) => classify(&err),
            Error::Store(err) => err,
        }
    }
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

fn sqlx_error(err: &DbErr) -> Option<&sqlx::Error> {
    match err {
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => Some(e.as_ref()),
        _ => None,
    }
}

/// The SQLSTATE (PostgreSQL), error number (MySQL) or extended result code (SQLite).
fn database_code(err: &DbErr) -> Option<String> {
    let sqlx::Error::Database(db) = sqlx_error(err)? else {
        return None;
    };
    if let Some(mysql) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        return Some(mysql.number().to_string());
    }
    db.code().map(|code| code.into_owned())
}

/// A lost lock race worth running the whole transaction again for.
pub(crate) fn is_retryable(err: &DbErr) -> bool {
    let Some(code) = database_code(err) else {
        return false;
    };
    matches!(
        code.as_str(),
        // PostgreSQL: deadlock detected, serialization failure.
        "40P01" | "40001"
        // MySQL/MariaDB: deadlock, lock wait timeout.
        | "1213" | "1205"
        // SQLite: BUSY, LOCKED and their extended codes.
        | "5" | "6" | "261" | "517" | "773" | "262"
    )
}

/// A unique index refused a row.
pub(crate) fn is_unique_violation(err: &DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

fn is_unavailable(err: &DbErr) -> bool {
    if matches!(err, DbErr::ConnectionAcquire(_)) {
        return true;
    }
    if let Some(sqlx) = sqlx_error(err) {
        match sqlx {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => return true,
            sqlx::Error::Database(_) => {
                if let Some(code) = database_code(err) {
                    let code = code.as_str();
                    // PostgreSQL: connection exceptions (08…), shutting down / starting up
                    // (57P0x), too many connections / out of resources (53…), a database not
                    // accepting connections (55000, e.g. `ALLOW_CONNECTIONS false`).
                    if code.starts_with("08")
                        || code.starts_with("57P")
                        || code.starts_with("53")
                        || code == "55000"
                    {
                        return true;
                    }
                    // MySQL/MariaDB: too many connections, server shutdown, connection killed,
                    // server gone away, lost connection.
                    if matches!(
                        code,
                        "1040" | "1053" | "1927" | "2002" | "2003" | "2006" | "2013"
                    ) {
                        return true;
                    }
                }
            }
            _ => {}
        }
    }
    let message = err.to_string().to_ascii_lowercase();
    message.contains("server closed the connection")
        || message.contains("connection refused")
        || message.contains("connection reset")
        || message.contains("broken pipe")
        || message.contains("unexpected eof")
}

/// What a caller sees of a database error.
pub(crate) fn classify(err: &DbErr) -> StoreError {
    if is_unavailable(err) || is_retryable(err) {
        StoreError::Unavailable(err.to_string())
    } else {
        StoreError::Other(err.to_string())
    }
}

/// A connection that broke (the server restarted or dropped it): a read can simply run again
/// on another one.
fn is_broken_connection(err: &DbErr) -> bool {
    matches!(
        sqlx_error(err),
        Some(sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed)
    ) || {
        let message = err.to_string().to_ascii_lowercase();
        message.contains("server closed the connection")
            || message.contains("terminating connection")
            || message.contains("connection reset")
            || message.contains("broken pipe")
            || message.contains("unexpected eof")
    }
}

/// Runs a read-only `op` again on lock races and on broken connections (after a database
/// restart the pool may still hold a few dead ones), so reads do not fail for that. Writes do
/// not get this: a write whose connection broke may have committed.
pub(crate) async fn retrying_read<T, F, Fut>(mut op: F) -> std::result::Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let (mut attempt, mut broken) = (0, 0);
    loop {
        attempt += 1;
        match op().await {
            Ok(value) => return Ok(value),
            Err(Error::Db(err)) if broken < READ_RECONNECTS && is_broken_connection(&err) => {
                broken += 1;
                debug!(error = %err, "read failed on a broken connection, trying another");
            }
            Err(Error::Db(err)) if attempt < ATTEMPTS && is_retryable(&err) => {
                tokio::time::sleep(Duration::from_millis(u64::from(attempt) * 2)).await;
            }
            Err(err) => return Err(err.into()),
        }
    }
}

/// How many broken connections a read goes through before it reports the store unavailable.
const READ_RECONNECTS: u32 = 12;

/// How often a transaction that lost a deadlock or lock race runs again.
const ATTEMPTS: u32 = 8;

/// Runs `op` (one whole transaction) again while it fails with a deadlock, serialization
/// failure or busy database, with a short growing pause.
pub(crate) async fn retrying<T, F, Fut>(mut op: F) -> std::result::Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match op().await {
            Ok(value) => return Ok(value),
            Err(Error::Db(err)) if attempt < ATTEMPTS && is_retryable(&err) => {
                debug!(error = %err, attempt, "transaction lost a lock race, running it again");
                let jitter = rand::random::<u64>() % 5;
                tokio::time::sleep(Duration::from_millis(u64::from(attempt) * 2 + jitter)).await;
            }
            Err(err) => return Err(err.into()),
        }
    }
}
