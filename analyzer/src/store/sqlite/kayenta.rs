//! The Kayenta API's repositories on the SQLite store: the same connection
//! and blocking-pool calls as the runs (see [`super`]), the tables of
//! migration 2, rows mapped by [`crate::store::kayenta`].

use super::{db, SqliteStore};
use crate::kayenta_api::execution::{Execution, Outcome};
use crate::kayenta_api::repository::{
    CanaryConfigRepository, ExecutionFilter, ExecutionRepository, RepositoryError,
};
use crate::store::kayenta::{
    config_of, config_row, name_taken, sql_limit, ExecutionRow, EXECUTION_COLUMNS,
};
use crate::store::{to_json, BoxFuture, StoreError};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, OptionalExtension};
use verdict_judges::kayenta::config::CanaryConfig;

fn execution_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ExecutionRow> {
    Ok(ExecutionRow {
        id: r.get(0)?,
        config_id: r.get(1)?,
        application: r.get(2)?,
        status: r.get(3)?,
        build_millis: r.get(4)?,
        end_millis: r.get(5)?,
        config_json: r.get(6)?,
        request_json: r.get(7)?,
        params_json: r.get(8)?,
        outcome_json: r.get(9)?,
    })
}

/// Whether `e` is a UNIQUE (or PRIMARY KEY) constraint failure.
fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

impl CanaryConfigRepository for SqliteStore {
    fn list(&self) -> BoxFuture<'_, Result<Vec<CanaryConfig>, RepositoryError>> {
        Box::pin(async move {
            let rows = self
                .call(|conn| {
                    let mut stmt = conn
                        .prepare("SELECT id, config_json FROM kayenta_configs ORDER BY id")
                        .map_err(db)?;
                    let rows = stmt
                        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                        .map_err(db)?
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(db)?;
                    rows.iter()
                        .map(|(id, json)| config_of(id, json))
                        .collect::<Result<Vec<_>, _>>()
                })
                .await?;
            Ok(rows)
        })
    }

    fn get<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<CanaryConfig>, RepositoryError>> {
        Box::pin(async move {
            let id = id.to_string();
            Ok(self
                .call(move |conn| {
                    let json: Option<String> = conn
                        .query_row(
                            "SELECT config_json FROM kayenta_configs WHERE id = ?1",
                            params![id],
                            |r| r.get(0),
                        )
                        .optional()
                        .map_err(db)?;
                    json.map(|j| config_of(&id, &j)).transpose()
                })
                .await?)
        })
    }

    fn put(&self, config: CanaryConfig) -> BoxFuture<'_, Result<(), RepositoryError>> {
        Box::pin(async move {
            let (id, name, updated, json) = config_row(&config)?;
            self.call(move |conn| {
                match conn.execute(
                    "INSERT INTO kayenta_configs (id, name, updated_millis, config_json) \
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (id) DO UPDATE SET \
                     name = excluded.name, updated_millis = excluded.updated_millis, \
                     config_json = excluded.config_json",
                    params![id, name, updated, json],
                ) {
                    Ok(_) => Ok(Ok(())),
                    Err(e) if is_unique_violation(&e) => Ok(Err(name_taken(&name))),
                    Err(e) => Err(db(e)),
                }
            })
            .await?
        })
    }

    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, RepositoryError>> {
        Box::pin(async move {
            let id = id.to_string();
            Ok(self
                .call(move |conn| {
                    conn.execute("DELETE FROM kayenta_configs WHERE id = ?1", params![id])
                        .map(|n| n > 0)
                        .map_err(db)
                })
                .await?)
        })
    }
}

impl ExecutionRepository for SqliteStore {
    fn insert(&self, execution: Execution) -> BoxFuture<'_, Result<(), RepositoryError>> {
        Box::pin(async move {
            let row = ExecutionRow::of(&execution)?;
            self.call(move |conn| {
                conn.execute(
                    &format!(
                        "INSERT INTO kayenta_executions ({EXECUTION_COLUMNS}) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                    ),
                    params![
                        row.id,
                        row.config_id,
                        row.application,
                        row.status,
                        row.build_millis,
                        row.end_millis,
                        row.config_json,
                        row.request_json,
                        row.params_json,
                        row.outcome_json
                    ],
                )
                .map(|_| ())
                .map_err(db)
            })
            .await?;
            Ok(())
        })
    }

    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Execution>, RepositoryError>> {
        Box::pin(async move {
            let id = id.to_string();
            Ok(self
                .call(move |conn| {
                    conn.query_row(
                        &format!(
                            "SELECT {EXECUTION_COLUMNS} FROM kayenta_executions WHERE id = ?1"
                        ),
                        params![id],
                        execution_row,
                    )
                    .optional()
                    .map_err(db)?
                    .map(ExecutionRow::into_execution)
                    .transpose()
                })
                .await?)
        })
    }

    fn finish<'a>(
        &'a self,
        id: &'a str,
        outcome: Outcome,
        end_millis: i64,
    ) -> BoxFuture<'a, Result<(), RepositoryError>> {
        Box::pin(async move {
            let id = id.to_string();
            let status = outcome.status();
            let json = to_json(&outcome)?;
            self.call(move |conn| {
                let updated = conn
                    .execute(
                        "UPDATE kayenta_executions SET status = ?1, end_millis = ?2, \
                         outcome_json = ?3 WHERE id = ?4 AND status = 'running'",
                        params![status, end_millis, json, id],
                    )
                    .map_err(db)?;
                if updated == 0 {
                    let exists: Option<i64> = conn
                        .query_row(
                            "SELECT 1 FROM kayenta_executions WHERE id = ?1",
                            params![id],
                            |r| r.get(0),
                        )
                        .optional()
                        .map_err(db)?;
                    if exists.is_none() {
                        return Err(StoreError::Backend(format!("no kayenta execution {id:?}")));
                    }
                }
                Ok(())
            })
            .await?;
            Ok(())
        })
    }

    fn list<'a>(
        &'a self,
        filter: &'a ExecutionFilter,
    ) -> BoxFuture<'a, Result<Vec<Execution>, RepositoryError>> {
        Box::pin(async move {
            let filter = filter.clone();
            Ok(self
                .call(move |conn| {
                    let mut sql =
                        format!("SELECT {EXECUTION_COLUMNS} FROM kayenta_executions WHERE 1 = 1");
                    let mut values: Vec<SqlValue> = Vec::new();
                    if let Some(app) = &filter.application {
                        values.push(SqlValue::Text(app.clone()));
                        sql.push_str(&format!(" AND application = ?{}", values.len()));
                    }
                    if let Some(statuses) = &filter.statuses {
                        let mut marks = Vec::new();
                        for s in statuses {
                            values.push(SqlValue::Text(s.clone()));
                            marks.push(format!("?{}", values.len()));
                        }
                        // An empty list matches nothing, as `IN ()` would.
                        let marks = if marks.is_empty() {
                            "NULL".to_string()
                        } else {
                            marks.join(", ")
                        };
                        sql.push_str(&format!(" AND status IN ({marks})"));
                    }
                    values.push(SqlValue::Integer(sql_limit(filter.limit)));
                    values.push(SqlValue::Integer(sql_limit(Some(filter.offset))));
                    sql.push_str(&format!(
                        " ORDER BY build_millis DESC, id DESC LIMIT ?{} OFFSET ?{}",
                        values.len() - 1,
                        values.len()
                    ));
                    let mut stmt = conn.prepare(&sql).map_err(db)?;
                    let rows = stmt
                        .query_map(params_from_iter(values), execution_row)
                        .map_err(db)?
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(db)?;
                    rows.into_iter()
                        .map(ExecutionRow::into_execution)
                        .collect::<Result<Vec<_>, _>>()
                })
                .await?)
        })
    }

    fn delete_ended_before(
        &self,
        cutoff_millis: i64,
    ) -> BoxFuture<'_, Result<u64, RepositoryError>> {
        Box::pin(async move {
            let deleted = self
                .call(move |conn| {
                    conn.execute(
                        "DELETE FROM kayenta_executions WHERE status <> 'running' \
                         AND COALESCE(end_millis, build_millis) < ?1",
                        params![cutoff_millis],
                    )
                    .map_err(db)
                })
                .await?;
            Ok(deleted as u64)
        })
    }
}
