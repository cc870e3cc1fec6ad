//! The `Store`: connection pools per backend, transactions and wake-ups.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use nosyntask_engine::StoreError;
use nosyntask_migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqliteTransactionMode, SqlxMySqlConnector, SqlxPostgresConnector, SqlxSqliteConnector,
    TransactionOptions, TransactionTrait,
};
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::error::{Result, classify};
use crate::notify;

/// The advisory lock PostgreSQL migrations take: the two-key form, a key space apart from the
/// per-user locks of `create_job` (single bigint keys).
const MIGRATION_LOCK: &str = "1853453172, 1";

/// Pool sizes and timeouts of a [`Store`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Connections of the PostgreSQL or MySQL pool (one of them is kept by the PostgreSQL
    /// notification listener).
    pub max_connections: u32,
    /// Read-only connections beside the single writer of a SQLite file database.
    pub sqlite_read_connections: u32,
    /// How long a call waits for a free connection before failing with `Unavailable`.
    pub acquire_timeout: Duration,
    /// PostgreSQL and MySQL: connections kept apart for lease renewals and the expiry sweep, so
    /// that checkpoint and progress writes filling the main pool never delay a heartbeat past
    /// the lease (healthy work would be declared dead).
    pub heartbeat_connections: u32,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 10,
            sqlite_read_connections: 4,
            acquire_timeout: Duration::from_secs(10),
            heartbeat_connections: 2,
        }
    }
}

/// The [`JobStore`](nosyntask_engine::JobStore) on SQLite, PostgreSQL or MySQL/MariaDB. Cheap
/// to clone: clones share the pools.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) backend: DbBackend,
    /// Every write goes here. On SQLite this is a single connection.
    pub(crate) write: DatabaseConnection,
    /// Reads that need no transaction (SQLite files: a pool beside the writer).
    pub(crate) read: DatabaseConnection,
    /// Lease renewals and the expiry sweep: a pool of their own on PostgreSQL and MySQL; the
    /// writer on SQLite (one writer at a time there anyway).
    pub(crate) heartbeat: DatabaseConnection,
    pub(crate) wake: Arc<Notify>,
    /// Model limits were recorded through this store: its claims go through the limited path
    /// (see `crate::models`).
    pub(crate) limits_in_use: std::sync::atomic::AtomicBool,
    /// The embedding service's in-transaction completion hook (see `crate::hooks`).
    pub(crate) hook: std::sync::OnceLock<Arc<dyn crate::TransactionHook>>,
    pub(crate) hook_failures: std::sync::atomic::AtomicU64,
    /// Who the outbox keeps events for (see `crate::outbox`).
    pub(crate) outbox: std::sync::OnceLock<Vec<crate::OutboxSubscriber>>,
    /// PostgreSQL: signals the task that sends `NOTIFY` to other processes.
    announce: Option<Arc<Notify>>,
    /// PostgreSQL: the `LISTEN` and `NOTIFY` tasks.
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.inner.backend)
            .finish_non_exhaustive()
    }
}

fn connect_error(err: sqlx::Error) -> StoreError {
    classify(&sea_orm::DbErr::Conn(sea_orm::RuntimeErr::SqlxError(
        Arc::new(err),
    )))
}

impl Store {
    /// Connects with default [`StoreOptions`]. URLs: `sqlite::memory:`,
    /// `sqlite://data/x.db?mode=rwc`, `postgres://…`, `mysql://…` (also MariaDB).
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Store::connect_with(url, StoreOptions::default()).await
    }

    /// Connects with the given pool options. Does not run migrations (see [`Store::migrate`]).
    pub async fn connect_with(url: &str, options: StoreOptions) -> Result<Store, StoreError> {
        let wake = Arc::new(Notify::new());
        if url.starts_with("sqlite:") {
            return connect_sqlite(url, &options, wake).await;
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let connect = PgConnectOptions::from_str(url).map_err(connect_error)?;
            let pg_pool = |size: u32| {
                PgPoolOptions::new()
                    .max_connections(size)
                    .acquire_timeout(options.acquire_timeout)
                    .test_before_acquire(false)
                    .before_acquire(|conn, meta| Box::pin(check_if_idle(conn, meta)))
                    .connect_with(connect.clone())
            };
            let pool = pg_pool(options.max_connections.max(2))
                .await
                .map_err(connect_error)?;
            let heartbeat = pg_pool(options.heartbeat_connections.max(1))
                .await
                .map_err(connect_error)?;
            let announce = Arc::new(Notify::new());
            let tasks = vec![
                tokio::spawn(notify::listen(pool.clone(), wake.clone())),
                tokio::spawn(notify::announce(pool.clone(), announce.clone())),
            ];
            let conn = SqlxPostgresConnector::from_sqlx_postgres_pool(pool);
            let heartbeat = SqlxPostgresConnector::from_sqlx_postgres_pool(heartbeat);
            return Ok(
                Store::new(DbBackend::Postgres, conn.clone(), conn, heartbeat, wake)
                    .with_announcer(announce, tasks),
            );
        }
        if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            let url = url.replacen("mariadb://", "mysql://", 1);
            let connect = MySqlConnectOptions::from_str(&url).map_err(connect_error)?;
            let mysql_pool = |size: u32| {
                MySqlPoolOptions::new()
                    .max_connections(size)
                    .acquire_timeout(options.acquire_timeout)
                    .test_before_acquire(false)
                    .before_acquire(|conn, meta| Box::pin(check_if_idle(conn, meta)))
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // Each statement sees the latest committed rows (a locked user row
                            // serializes starts), and no gap locks that deadlock inserts.
                            sqlx::Executor::execute(
                                conn,
                                "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
                            )
                            .await
                            .map(|_| ())
                        })
                    })
                    .connect_with(connect.clone())
            };
            let pool = mysql_pool(options.max_connections.max(1))
                .await
                .map_err(connect_error)?;
            let heartbeat = mysql_pool(options.heartbeat_connections.max(1))
                .await
                .map_err(connect_error)?;
            let conn = SqlxMySqlConnector::from_sqlx_mysql_pool(pool);
            let heartbeat = SqlxMySqlConnector::from_sqlx_mysql_pool(heartbeat);
            return Ok(Store::new(
                DbBackend::MySql,
                conn.clone(),
                conn,
                heartbeat,
                wake,
            ));
        }
        Err(StoreError::Other(format!(
            "unsupported database URL (expected sqlite:, postgres:// or mysql://): {}",
            url.split('@').next_back().unwrap_or_default()
        )))
    }

    fn new(
        backend: DbBackend,
        write: DatabaseConnection,
        read: DatabaseConnection,
        heartbeat: DatabaseConnection,
        wake: Arc<Notify>,
    ) -> Store {
        Store {
            inner: Arc::new(Inner {
                backend,
                write,
                read,
                heartbeat,
                wake,
                limits_in_use: std::sync::atomic::AtomicBool::new(false),
                hook: std::sync::OnceLock::new(),
                hook_failures: std::sync::atomic::AtomicU64::new(0),
                outbox: std::sync::OnceLock::new(),
                announce: None,
                tasks: Vec::new(),
            }),
        }
    }

    /// A store fresh from [`Store::new`] with the PostgreSQL notification tasks.
    fn with_announcer(mut self, announce: Arc<Notify>, tasks: Vec<JoinHandle<()>>) -> Store {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => {
                inner.announce = Some(announce);
                inner.tasks = tasks;
            }
            None => tasks.iter().for_each(JoinHandle::abort),
        }
        self
    }

    /// Whether the database holds a `workflow_jobs` table the engine did not create (NanoStory's
    /// own engine's): [`Store::migrate`] refuses to run beside it.
    pub async fn has_foreign_workflow_tables(&self) -> Result<bool, StoreError> {
        foreign_workflow_jobs(&self.inner.write)
            .await
            .map_err(|err| classify(&err))
    }

    /// Whether `table` exists in the store's database.
    pub async fn has_table(&self, table: &str) -> Result<bool, StoreError> {
        table_exists(&self.inner.write, table)
            .await
            .map_err(|err| classify(&err))
    }

    /// Applies every pending schema migration. Processes starting together take turns
    /// (a PostgreSQL advisory lock, a MySQL named lock), so each migration runs once.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.migrate_locked().await.map_err(|err| classify(&err))
    }

    async fn migrate_locked(&self) -> Result<(), DbErr> {
        let write = &self.inner.write;
        match self.inner.backend {
            DbBackend::Postgres => {
                // DDL is transactional on PostgreSQL: migrate inside the lock's transaction.
                let txn = write.begin().await?;
                txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
                    .await?;
                refuse_foreign_tables(&txn).await?;
                Migrator::up(&txn, None).await?;
                txn.commit().await
            }
            DbBackend::MySql => {
                // MySQL commits DDL at once; a named lock on a pinned connection serializes.
                let pool = write.get_mysql_connection_pool();
                let mut lock = pool
                    .acquire()
                    .await
                    .map_err(|e| DbErr::Conn(sea_orm::RuntimeErr::SqlxError(Arc::new(e))))?;
                let sqlx_err = |e| DbErr::Exec(sea_orm::RuntimeErr::SqlxError(Arc::new(e)));
                sqlx::Executor::execute(&mut *lock, "SELECT GET_LOCK('nosyntask_migrate', 300)")
                    .await
                    .map_err(sqlx_err)?;
                let migrated = match refuse_foreign_tables(write).await {
                    Ok(()) => Migrator::up(write, None).await,
                    Err(err) => Err(err),
                };
                sqlx::Executor::execute(&mut *lock, "SELECT RELEASE_LOCK('nosyntask_migrate')")
                    .await
                    .map_err(sqlx_err)?;
                migrated
            }
            _ => {
                refuse_foreign_tables(write).await?;
                Migrator::up(write, None).await
            }
        }
    }

    /// The sea-orm connection writes go through (for tools and tests).
    pub fn connection(&self) -> &DatabaseConnection {
        &self.inner.write
    }

    /// Closes the pools. Calls on this store or its clones fail afterwards.
    pub async fn close(&self) {
        for task in &self.inner.tasks {
            task.abort();
        }
        let _ = self.inner.read.close_by_ref().await;
        let _ = self.inner.heartbeat.close_by_ref().await;
        let _ = self.inner.write.close_by_ref().await;
    }

    pub(crate) fn backend(&self) -> DbBackend {
        self.inner.backend
    }

    /// Starts a write transaction (`BEGIN IMMEDIATE` on SQLite, so it never needs upgrading).
    pub(crate) async fn begin(&self) -> Result<DatabaseTransaction, DbErr> {
        begin_on(&self.inner.write, self.inner.backend).await
    }

    /// New work is ready (call after its commit): wakes this process's idle workers at once
    /// and, on PostgreSQL, every other process's through a coalesced `NOTIFY`.
    pub(crate) fn announce(&self) {
        notify::wake(&self.inner.wake);
        if let Some(announce) = &self.inner.announce {
            announce.notify_one();
        }
    }
}

/// The engine's first migration: a database whose migration log lacks it did not get its
/// `workflow_jobs` from the engine.
const FIRST_MIGRATION: &str = "m20250101_000001_create_jobs";

/// Refuses to migrate a database that holds a `workflow_jobs` table the engine did not create
/// (NanoStory's own engine keeps one of another shape): the migrations' `CREATE TABLE IF NOT
/// EXISTS` would pass over it, and every statement after would fail on its columns.
async fn refuse_foreign_tables(conn: &impl ConnectionTrait) -> Result<(), DbErr> {
    if !foreign_workflow_jobs(conn).await? {
        return Ok(());
    }
    Err(DbErr::Migration(
        "the database already has a `workflow_jobs` table that nosyntask did not create (NanoStory's \
         own engine keeps one); nothing was changed. Move NanoStory's tables aside first: \
         `nosyntask-server nanostory-upgrade` (docs/integration.md, \"NanoStory's own tables\")"
            .into(),
    ))
}

/// Whether `table` exists in the connection's database (schema, on PostgreSQL).
pub(crate) async fn table_exists(conn: &impl ConnectionTrait, table: &str) -> Result<bool, DbErr> {
    let backend = conn.get_database_backend();
    let sql = match backend {
        DbBackend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
        DbBackend::Postgres => {
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = ?"
        }
        _ => {
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_schema = DATABASE() AND table_name = ?"
        }
    };
    count(conn, crate::sql::stmt(backend, sql, vec![table.into()]))
        .await
        .map(|n| n > 0)
}

async fn count(conn: &impl ConnectionTrait, statement: sea_orm::Statement) -> Result<i64, DbErr> {
    let row = conn.query_one_raw(statement).await?;
    row.map_or(Ok(0), |row| crate::sql::col::<i64>(&row, 0))
}

/// Whether the database holds a `workflow_jobs` table the engine's migrations did not create.
async fn foreign_workflow_jobs(conn: &impl ConnectionTrait) -> Result<bool, DbErr> {
    if !table_exists(conn, "workflow_jobs").await? {
        return Ok(false);
    }
    if !table_exists(conn, "seaql_migrations").await? {
        return Ok(true);
    }
    let backend = conn.get_database_backend();
    let ours = count(
        conn,
        crate::sql::stmt(
            backend,
            "SELECT COUNT(*) FROM seaql_migrations WHERE version = ?",
            vec![FIRST_MIGRATION.into()],
        ),
    )
    .await?;
    Ok(ours == 0)
}

/// Starts a write transaction on `conn` (`BEGIN IMMEDIATE` on SQLite, so it never needs
/// upgrading).
pub(crate) async fn begin_on(
    conn: &DatabaseConnection,
    backend: DbBackend,
) -> Result<DatabaseTransaction, DbErr> {
    if backend == DbBackend::Sqlite {
        conn.begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        })
        .await
    } else {
        conn.begin().await
    }
}

/// Connections idle longer than this are pinged before use; busy ones are not (a ping is a
/// round trip), and a dead busy one fails its call once and is dropped.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Drops pooled connections that died while idle (e.g. across a database restart).
async fn check_if_idle<C: sqlx::Connection>(
    conn: &mut C,
    meta: sqlx::pool::PoolConnectionMetadata,
) -> Result<bool, sqlx::Error> {
    if meta.idle_for < PING_AFTER_IDLE {
        return Ok(true);
    }
    Ok(conn.ping().await.is_ok())
}

async fn connect_sqlite(
    url: &str,
    options: &StoreOptions,
    wake: Arc<Notify>,
) -> Result<Store, StoreError> {
    let connect = SqliteConnectOptions::from_str(url)
        .map_err(connect_error)?
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true);
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    // Every write goes through one connection, so write transactions queue in the pool instead
    // of failing with SQLITE_BUSY.
    let writer = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .acquire_timeout(options.acquire_timeout)
        .test_before_acquire(false);
    if in_memory {
        // Each new connection to `:memory:` would be another, empty database: keep the one.
        let pool = writer
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(connect)
            .await
            .map_err(connect_error)?;
        let conn = SqlxSqliteConnector::from_sqlx_sqlite_pool(pool);
        return Ok(Store::new(
            DbBackend::Sqlite,
            conn.clone(),
            conn.clone(),
            conn,
            wake,
        ));
    }
    let filename = connect.get_filename().to_path_buf();
    if let Some(parent) = filename.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|err| {
            StoreError::Other(format!(
                "cannot create the database directory {}: {err}",
                parent.display()
            ))
        })?;
    }
    let write_pool = writer
        .connect_with(connect.clone())
        .await
        .map_err(connect_error)?;
    // WAL lets readers run beside the writer.
    let read_pool = SqlitePoolOptions::new()
        .max_connections(options.sqlite_read_connections.max(1))
        .acquire_timeout(options.acquire_timeout)
        .test_before_acquire(false)
        .connect_with(connect.create_if_missing(false))
        .await
        .map_err(connect_error)?;
    let write = SqlxSqliteConnector::from_sqlx_sqlite_pool(write_pool);
    Ok(Store::new(
        DbBackend::Sqlite,
        write.clone(),
        SqlxSqliteConnector::from_sqlx_sqlite_pool(read_pool),
        write,
        wake,
    ))
}
