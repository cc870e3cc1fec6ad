//! Fresh, migrated stores for tests of this and other crates.
//!
//! ```no_run
//! # async fn example() {
//! use nosyntask_store::testing::{TestStore, test_store};
//! // `None` (and a note on stderr) when the backend's URL variable is not set.
//! if let Some(db) = test_store("postgres").await.unwrap() {
//!     let store = db.shared();
//!     // ... use the store ...
//!     db.cleanup().await; // or just drop it
//! }
//! # }
//! ```
//!
//! Backends: `sqlite` (in memory), `sqlite-file` (a file in a temporary directory), `postgres`
//! and `mysql` (a new database with a random name on the server named by
//! [`POSTGRES_URL_ENV`] / [`MYSQL_URL_ENV`], dropped afterwards).

use std::path::PathBuf;
use std::sync::Arc;

use nosyntask_engine::{JobStore, StoreError};
use sqlx::Connection;

use crate::store::{Store, StoreOptions};

/// Names a PostgreSQL server (any database on it) to run PostgreSQL tests against.
pub const POSTGRES_URL_ENV: &str = "NOSYNTASK_TEST_POSTGRES_URL";
/// Names a MySQL/MariaDB server (any database on it) to run MySQL tests against.
pub const MYSQL_URL_ENV: &str = "NOSYNTASK_TEST_MYSQL_URL";

/// Every backend name [`test_store`] accepts.
pub const BACKENDS: [&str; 4] = ["sqlite", "sqlite-file", "postgres", "mysql"];

/// A migrated store on its own database; the database (or directory) is removed by
/// [`TestStore::cleanup`] or, failing that, on drop.
pub struct TestStore {
    store: Store,
    url: String,
    cleanup: Option<Cleanup>,
}

enum Cleanup {
    Directory(PathBuf),
    Database {
        admin_url: String,
        name: String,
        postgres: bool,
    },
}

impl std::fmt::Debug for TestStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestStore")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl TestStore {
    /// The store itself (for [`Store`]'s own methods).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The store as the engine takes it.
    pub fn shared(&self) -> Arc<dyn JobStore> {
        Arc::new(self.store.clone())
    }

    /// The URL of the test database, to connect more stores to it (e.g. a second "process").
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Closes the store and removes its database.
    pub async fn cleanup(mut self) {
        self.store.close().await;
        if let Some(cleanup) = self.cleanup.take() {
            cleanup.run().await;
        }
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        let Some(cleanup) = self.cleanup.take() else {
            return;
        };
        // Drop cannot await: remove the database on a thread with its own runtime.
        let worker = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                runtime.block_on(cleanup.run());
            }
        });
        let _ = worker.join();
    }
}

impl Cleanup {
    async fn run(self) {
        match self {
            Cleanup::Directory(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Database {
                admin_url,
                name,
                postgres,
            } => {
                let result = if postgres {
                    match sqlx::PgConnection::connect(&admin_url).await {
                        Ok(mut conn) => sqlx::Executor::execute(
                            &mut conn,
                            sqlx::AssertSqlSafe(format!(
                                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                            )),
                        )
                        .await
                        .map(|_| ()),
                        Err(err) => Err(err),
                    }
                } else {
                    match sqlx::MySqlConnection::connect(&admin_url).await {
                        Ok(mut conn) => sqlx::Executor::execute(
                            &mut conn,
                            sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS `{name}`")),
                        )
                        .await
                        .map(|_| ()),
                        Err(err) => Err(err),
                    }
                };
                if let Err(err) = result {
                    eprintln!("could not drop test database {name}: {err}");
                }
            }
        }
    }
}

/// The URL variable a server backend needs, if any.
pub fn url_env(backend: &str) -> Option<&'static str> {
    match backend {
        "postgres" => Some(POSTGRES_URL_ENV),
        "mysql" => Some(MYSQL_URL_ENV),
        _ => None,
    }
}

/// `url` with its database name replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{database}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

fn random_name() -> String {
    format!("nosyntask_test_{:016x}", rand::random::<u64>())
}

/// A fresh migrated store for `backend` (see [`BACKENDS`]). `Ok(None)` when the backend's URL
/// variable is not set: the caller skips (a note says so on stderr).
pub async fn test_store(backend: &str) -> Result<Option<TestStore>, StoreError> {
    fresh_store(backend, true).await
}

/// A store on a fresh, empty database (no migration run), for tests of what a database held
/// before the engine's schema: an upgrade, a foreign table of the same name.
pub async fn unmigrated_test_store(backend: &str) -> Result<Option<TestStore>, StoreError> {
    fresh_store(backend, false).await
}

async fn fresh_store(backend: &str, migrate: bool) -> Result<Option<TestStore>, StoreError> {
    let (url, cleanup) = match backend {
        "sqlite" => ("sqlite::memory:".to_owned(), None),
        "sqlite-file" => {
            let dir = std::env::temp_dir().join(random_name());
            let url = format!("sqlite://{}?mode=rwc", dir.join("jobs.db").display());
            (url, Some(Cleanup::Directory(dir)))
        }
        "postgres" | "mysql" => {
            let postgres = backend == "postgres";
            let env = if postgres {
                POSTGRES_URL_ENV
            } else {
                MYSQL_URL_ENV
            };
            let Ok(admin_url) = std::env::var(env) else {
                eprintln!("skipping the {backend} test: set {env} to run it");
                return Ok(None);
            };
            let name = random_name();
            let created = if postgres {
                match sqlx::PgConnection::connect(&admin_url).await {
                    Ok(mut conn) => sqlx::Executor::execute(
                        &mut conn,
                        sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")),
                    )
                    .await
                    .map(|_| ()),
                    Err(err) => Err(err),
                }
            } else {
                match sqlx::MySqlConnection::connect(&admin_url).await {
                    Ok(mut conn) => sqlx::Executor::execute(
                        &mut conn,
                        sqlx::AssertSqlSafe(format!(
                            "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
                        )),
                    )
                    .await
                    .map(|_| ()),
                    Err(err) => Err(err),
                }
            };
            created.map_err(|err| {
                StoreError::Unavailable(format!("cannot create test database {name}: {err}"))
            })?;
            (
                with_database(&admin_url, &name),
                Some(Cleanup::Database {
                    admin_url,
                    name,
                    postgres,
                }),
            )
        }
        other => {
            return Err(StoreError::Other(format!(
                "unknown test backend `{other}` (expected one of {BACKENDS:?})"
            )));
        }
    };
    let options = StoreOptions {
        max_connections: 8,
        ..StoreOptions::default()
    };
    let store = match Store::connect_with(&url, options).await {
        Ok(store) => store,
        Err(err) => {
            if let Some(cleanup) = cleanup {
                cleanup.run().await;
            }
            return Err(err);
        }
    };
    let mut test_store = TestStore {
        store,
        url,
        cleanup,
    };
    if !migrate {
        return Ok(Some(test_store));
    }
    if let Err(err) = test_store.store.migrate().await {
        if let Some(cleanup) = test_store.cleanup.take() {
            test_store.store.close().await;
            cleanup.run().await;
        }
        return Err(err);
    }
    Ok(Some(test_store))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("mysql://root@localhost/test?ssl-mode=disabled", "x"),
            "mysql://root@localhost/x?ssl-mode=disabled"
        );
        assert_eq!(
            with_database("postgres://localhost", "x"),
            "postgres://localhost/x"
        );
    }
}
