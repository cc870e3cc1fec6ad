//! The committed entities (`nosyntask_store::entities`) against the schema the migrations build:
//! migrates a fresh database (SQLite always; PostgreSQL and MySQL/MariaDB when
//! `NOSYNTASK_TEST_POSTGRES_URL` / `NOSYNTASK_TEST_MYSQL_URL` name a server), reads every table's
//! real columns from the catalogue, and compares them with the entities' columns: the same
//! tables, the same column names, nullability, primary key and type (integer / big integer /
//! boolean / `VARCHAR` / text; not `VARCHAR`'s length, which sea-orm-cli does not write into the
//! entities either). A migration that changes the schema without the entities
//! being regenerated (`scripts/entities.sh`) fails here, naming the table and column.
//!
//! Types are compared as the migrations mean them, not as each backend spells them: MySQL's
//! `LONGTEXT` is text and its `tinyint(1)` a boolean; SQLite's integers are all 64-bit (its
//! auto-increment ids are `INTEGER`), so only there an integer and a big integer are the same.
//! Generated columns (`generation_tasks.claim_key`) are left out, as sea-orm-cli leaves them out
//! of the entities: the database computes them, and an insert or update naming one fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fmt;

use nosyntask_store::entities::{
    event_outbox, generation_tasks, model_limits, owner_leases, task_attempts, workflow_jobs,
    workflow_user_locks,
};
use nosyntask_store::testing::test_store;
use sea_orm::{
    ColumnTrait, ColumnType, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    IdenStatic, Iterable, PrimaryKeyToColumn, QueryResult, Statement,
};

/// Tables of the migrations that are not the engine's.
const NOT_ENGINE_TABLES: [&str; 2] = ["seaql_migrations", "sqlite_sequence"];

/// A column's type, as the migrations mean it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    Integer,
    BigInteger,
    Boolean,
    Varchar,
    Text,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Column {
    /// `Err` holds a type the comparison does not know (it always differs).
    ty: Result<Type, String>,
    nullable: bool,
    primary_key: bool,
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.ty {
            Ok(ty) => write!(f, "{ty:?}")?,
            Err(unknown) => write!(f, "unknown type {unknown}")?,
        }
        f.write_str(if self.nullable { " NULL" } else { " NOT NULL" })?;
        if self.primary_key {
            f.write_str(" PRIMARY KEY")?;
        }
        Ok(())
    }
}

type Columns = BTreeMap<String, Column>;

/// An entity's table and columns, from its `Column` and `PrimaryKey` enums.
fn entity<E: EntityTrait>() -> (String, Columns) {
    let keys: Vec<String> = E::PrimaryKey::iter()
        .map(|key| key.into_column().as_str().to_owned())
        .collect();
    let columns = E::Column::iter()
        .map(|column| {
            let def = column.def();
            let ty = match def.get_column_type() {
                ColumnType::Integer => Ok(Type::Integer),
                ColumnType::BigInteger => Ok(Type::BigInteger),
                ColumnType::Boolean => Ok(Type::Boolean),
                ColumnType::String(_) => Ok(Type::Varchar),
                ColumnType::Text => Ok(Type::Text),
                other => Err(format!("{other:?}")),
            };
            let name = column.as_str().to_owned();
            let primary_key = keys.contains(&name);
            let column = Column {
                ty,
                nullable: def.is_null(),
                primary_key,
            };
            (name, column)
        })
        .collect();
    (E::default().table_name().to_owned(), columns)
}

/// Every committed entity. A table without one fails [`compare`]; add new entities here.
fn entities() -> BTreeMap<String, Columns> {
    [
        entity::<workflow_jobs::Entity>(),
        entity::<generation_tasks::Entity>(),
        entity::<task_attempts::Entity>(),
        entity::<event_outbox::Entity>(),
        entity::<model_limits::Entity>(),
        entity::<owner_leases::Entity>(),
        entity::<workflow_user_locks::Entity>(),
    ]
    .into_iter()
    .collect()
}

async fn query(conn: &DatabaseConnection, sql: &str) -> Vec<QueryResult> {
    conn.query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .unwrap_or_else(|err| panic!("{sql}: {err}"))
}

fn text(row: &QueryResult, column: &str) -> String {
    row.try_get::<String>("", column)
        .unwrap_or_else(|err| panic!("{column}: {err}"))
}

/// The engine's tables and their columns, read from the database's catalogue.
async fn schema(conn: &DatabaseConnection) -> BTreeMap<String, Columns> {
    let backend = conn.get_database_backend();
    let tables_sql = match backend {
        DbBackend::Sqlite => "SELECT name AS table_name FROM sqlite_master WHERE type = 'table'",
        DbBackend::Postgres => {
            "SELECT table_name::text AS table_name FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        }
        _ => {
            "SELECT CAST(table_name AS CHAR) AS table_name FROM information_schema.tables \
             WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'"
        }
    };
    let mut tables = BTreeMap::new();
    for row in query(conn, tables_sql).await {
        let table = text(&row, "table_name");
        if NOT_ENGINE_TABLES.contains(&table.as_str()) {
            continue;
        }
        let columns = match backend {
            DbBackend::Sqlite => sqlite_columns(conn, &table).await,
            DbBackend::Postgres => postgres_columns(conn, &table).await,
            _ => mysql_columns(conn, &table).await,
        };
        tables.insert(table, columns);
    }
    tables
}

async fn sqlite_columns(conn: &DatabaseConnection, table: &str) -> Columns {
    // `hidden` 2 and 3: generated columns (virtual, stored).
    let sql = format!(
        "SELECT name, type, \"notnull\" AS not_null, pk FROM pragma_table_xinfo('{table}') \
         WHERE hidden NOT IN (2, 3)"
    );
    let mut columns = Columns::new();
    for row in query(conn, &sql).await {
        let declared = text(&row, "type").to_lowercase();
        // SQLite's integers are all 64-bit.
        let ty = if declared.contains("int") {
            Ok(Type::BigInteger)
        } else if declared.starts_with("bool") {
            Ok(Type::Boolean)
        } else if declared.starts_with("varchar") {
            Ok(Type::Varchar)
        } else if declared == "text" {
            Ok(Type::Text)
        } else {
            Err(declared)
        };
        let column = Column {
            ty,
            nullable: row.try_get::<i32>("", "not_null").unwrap() == 0,
            primary_key: row.try_get::<i32>("", "pk").unwrap() > 0,
        };
        columns.insert(text(&row, "name"), column);
    }
    columns
}

async fn postgres_columns(conn: &DatabaseConnection, table: &str) -> Columns {
    let sql = format!(
        "SELECT c.column_name::text AS name, c.data_type::text AS data_type, \
                c.is_nullable::text AS is_nullable, \
                EXISTS (SELECT 1 FROM information_schema.table_constraints t \
                        JOIN information_schema.key_column_usage k \
                          ON k.constraint_schema = t.constraint_schema \
                         AND k.constraint_name = t.constraint_name \
                        WHERE t.table_schema = c.table_schema AND t.table_name = c.table_name \
                          AND t.constraint_type = 'PRIMARY KEY' \
                          AND k.column_name = c.column_name) AS primary_key \
         FROM information_schema.columns c \
         WHERE c.table_schema = current_schema() AND c.table_name = '{table}' \
           AND c.is_generated = 'NEVER'"
    );
    let mut columns = Columns::new();
    for row in query(conn, &sql).await {
        let data_type = text(&row, "data_type");
        let ty = match data_type.as_str() {
            "integer" => Ok(Type::Integer),
            "bigint" => Ok(Type::BigInteger),
            "boolean" => Ok(Type::Boolean),
            "character varying" => Ok(Type::Varchar),
            "text" => Ok(Type::Text),
            _ => Err(data_type),
        };
        let column = Column {
            ty,
            nullable: text(&row, "is_nullable") == "YES",
            primary_key: row.try_get::<bool>("", "primary_key").unwrap(),
        };
        columns.insert(text(&row, "name"), column);
    }
    columns
}

async fn mysql_columns(conn: &DatabaseConnection, table: &str) -> Columns {
    let sql = format!(
        "SELECT CAST(column_name AS CHAR) AS name, CAST(column_type AS CHAR) AS column_type, \
                CAST(is_nullable AS CHAR) AS is_nullable, CAST(column_key AS CHAR) AS column_key \
         FROM information_schema.columns \
         WHERE table_schema = DATABASE() AND table_name = '{table}' \
           AND COALESCE(generation_expression, '') = ''"
    );
    let mut columns = Columns::new();
    for row in query(conn, &sql).await {
        let column_type = text(&row, "column_type").to_lowercase();
        let base = column_type.split('(').next().unwrap_or_default();
        let ty = match base {
            "tinyint" if column_type.starts_with("tinyint(1)") => Ok(Type::Boolean),
            "int" => Ok(Type::Integer),
            "bigint" => Ok(Type::BigInteger),
            "varchar" => Ok(Type::Varchar),
            "text" | "longtext" => Ok(Type::Text),
            _ => Err(column_type.clone()),
        };
        let column = Column {
            ty,
            nullable: text(&row, "is_nullable") == "YES",
            primary_key: text(&row, "column_key") == "PRI",
        };
        columns.insert(text(&row, "name"), column);
    }
    columns
}

/// Every difference between the entities and the database, one line each.
fn compare(
    backend: DbBackend,
    entities: &BTreeMap<String, Columns>,
    database: &BTreeMap<String, Columns>,
) -> Vec<String> {
    let mut drift = Vec::new();
    for table in database.keys().filter(|t| !entities.contains_key(*t)) {
        drift.push(format!("table {table}: in the database, but no entity"));
    }
    for table in entities.keys().filter(|t| !database.contains_key(*t)) {
        drift.push(format!("table {table}: an entity, but not in the database"));
    }
    for (table, expected) in entities {
        let Some(actual) = database.get(table) else {
            continue;
        };
        for (name, column) in actual {
            match expected.get(name) {
                None => drift.push(format!(
                    "{table}.{name}: in the database ({column}), but not in the entity"
                )),
                Some(entity) => {
                    let mut entity = entity.clone();
                    if backend == DbBackend::Sqlite && entity.ty == Ok(Type::Integer) {
                        entity.ty = Ok(Type::BigInteger);
                    }
                    if &entity != column {
                        drift.push(format!(
                            "{table}.{name}: the database has {column}, the entity {entity}"
                        ));
                    }
                }
            }
        }
        for (name, column) in expected.iter().filter(|(n, _)| !actual.contains_key(*n)) {
            drift.push(format!(
                "{table}.{name}: in the entity ({column}), but not in the database"
            ));
        }
    }
    drift
}

async fn entities_match_the_migrated_schema(backend: &str) {
    let Some(db) = test_store(backend).await.unwrap() else {
        return;
    };
    let conn = db.store().connection();
    let database = schema(conn).await;
    let drift = compare(conn.get_database_backend(), &entities(), &database);
    db.cleanup().await;
    assert!(
        drift.is_empty(),
        "the entities in crates/store/src/entities/ differ from the schema the migrations build \
         on {backend} (regenerate them with scripts/entities.sh):\n  {}",
        drift.join("\n  ")
    );
}

#[tokio::test]
async fn sqlite_entities_match_the_migrated_schema() {
    entities_match_the_migrated_schema("sqlite").await;
}

#[tokio::test]
async fn postgres_entities_match_the_migrated_schema() {
    entities_match_the_migrated_schema("postgres").await;
}

#[tokio::test]
async fn mysql_entities_match_the_migrated_schema() {
    entities_match_the_migrated_schema("mysql").await;
}

/// The comparison itself: each kind of drift is reported, naming the table and column.
#[test]
fn drift_is_reported_by_table_and_column() {
    let column = |ty, nullable| Column {
        ty: Ok(ty),
        nullable,
        primary_key: false,
    };
    let entities = BTreeMap::from([(
        "jobs".to_owned(),
        Columns::from([
            ("a".to_owned(), column(Type::BigInteger, false)),
            ("b".to_owned(), column(Type::Varchar, true)),
            ("c".to_owned(), column(Type::Text, true)),
        ]),
    )]);
    let database = BTreeMap::from([
        (
            "jobs".to_owned(),
            Columns::from([
                ("a".to_owned(), column(Type::BigInteger, false)),
                ("b".to_owned(), column(Type::Text, true)),
                ("d".to_owned(), column(Type::Integer, false)),
            ]),
        ),
        ("limits".to_owned(), Columns::new()),
    ]);
    assert_eq!(
        compare(DbBackend::Postgres, &entities, &database),
        [
            "table limits: in the database, but no entity",
            "jobs.b: the database has Text NULL, the entity Varchar NULL",
            "jobs.d: in the database (Integer NOT NULL), but not in the entity",
            "jobs.c: in the entity (Text NULL), but not in the database",
        ]
    );
    assert!(compare(DbBackend::Postgres, &entities, &entities).is_empty());
}
