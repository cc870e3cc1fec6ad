//! Helpers for the statements built with sea-orm's query builder.

use sea_orm::ColumnTrait;
use sea_orm::sea_query::{Expr, ExprTrait};

/// An inline SQL literal of a status name. The statuses of a statement are constants, and
/// spelled inline a planner sees them: PostgreSQL's partial indexes on active rows and SQLite's
/// planner match only a literal, never a bound parameter.
pub(crate) fn literal(status: &str) -> Expr {
    Expr::Constant(status.into())
}

/// `column = status`, the status inline (see [`literal`]).
pub(crate) fn status_is<C: ColumnTrait>(column: C, status: &str) -> Expr {
    column.into_expr().eq(literal(status))
}

/// `column IN (statuses…)`, the statuses inline (see [`literal`]).
pub(crate) fn status_in<C: ColumnTrait>(column: C, statuses: &[&str]) -> Expr {
    column
        .into_expr()
        .is_in(statuses.iter().map(|s| literal(s)))
}

/// SQL `NULL` for a nullable column of these types.
pub(crate) fn null_int() -> Expr {
    Expr::value(Option::<i64>::None)
}

pub(crate) fn null_text() -> Expr {
    Expr::value(Option::<String>::None)
}
