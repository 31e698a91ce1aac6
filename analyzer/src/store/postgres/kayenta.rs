//! The Kayenta API's repositories on the PostgreSQL store: the store's own
//! pool (see [`super`]), the tables of migration 2, rows mapped by
//! [`crate::store::kayenta`]. Replicas share the records: a config posted
//! to one is listed by all, an execution started on one is polled on any.
//! The unique name is the database's, so two replicas posting one name at
//! once cannot both succeed.

use super::{db, PostgresStore};
use crate::kayenta_api::execution::{Execution, Outcome};
use crate::kayenta_api::repository::{
    CanaryConfigRepository, ExecutionFilter, ExecutionRepository, RepositoryError,
};
use crate::store::kayenta::{
    config_of, config_row, name_taken, sql_limit, ExecutionRow, EXECUTION_COLUMNS,
};
use crate::store::{to_json, BoxFuture, StoreError};
use tokio_postgres::error::SqlState;
use tokio_postgres::Row;
use verdict_judges::kayenta::config::CanaryConfig;

fn execution_row(r: &Row) -> ExecutionRow {
    ExecutionRow {
        id: r.get(0),
        config_id: r.get(1),
        application: r.get(2),
        status: r.get(3),
        build_millis: r.get(4),
        end_millis: r.get(5),
        config_json: r.get(6),
        request_json: r.get(7),
        params_json: r.get(8),
        outcome_json: r.get(9),
    }
}

impl CanaryConfigRepository for PostgresStore {
    fn list(&self) -> BoxFuture<'_, Result<Vec<CanaryConfig>, RepositoryError>> {
        Box::pin(async move {
            let conn = self.pool.get().await?;
            let rows = conn
                .query(
                    "SELECT id, config_json FROM kayenta_configs ORDER BY id",
                    &[],
                )
                .await
                .map_err(db)?;
            Ok(rows
                .iter()
                .map(|r| config_of(r.get(0), r.get(1)))
                .collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn get<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<CanaryConfig>, RepositoryError>> {
        Box::pin(async move {
            let conn = self.pool.get().await?;
            let row = conn
                .query_opt(
                    "SELECT config_json FROM kayenta_configs WHERE id = $1",
                    &[&id],
                )
                .await
                .map_err(db)?;
            Ok(row.map(|r| config_of(id, r.get(0))).transpose()?)
        })
    }

    fn put(&self, config: CanaryConfig) -> BoxFuture<'_, Result<(), RepositoryError>> {
        Box::pin(async move {
            let (id, name, updated, json) = config_row(&config)?;
            let conn = self.pool.get().await?;
            match conn
                .execute(
                    "INSERT INTO kayenta_configs (id, name, updated_millis, config_json) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET \
                     name = excluded.name, updated_millis = excluded.updated_millis, \
                     config_json = excluded.config_json",
                    &[&id, &name, &updated, &json],
                )
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Err(name_taken(&name)),
                Err(e) => Err(db(e).into()),
            }
        })
    }

    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, RepositoryError>> {
        Box::pin(async move {
            let conn = self.pool.get().await?;
            let n = conn
                .execute("DELETE FROM kayenta_configs WHERE id = $1", &[&id])
                .await
                .map_err(db)?;
            Ok(n > 0)
        })
    }
}

impl ExecutionRepository for PostgresStore {
    fn insert(&self, execution: Execution) -> BoxFuture<'_, Result<(), RepositoryError>> {
        Box::pin(async move {
            let row = ExecutionRow::of(&execution)?;
            let conn = self.pool.get().await?;
            conn.execute(
                &format!(
                    "INSERT INTO kayenta_executions ({EXECUTION_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                ),
                &[
                    &row.id,
                    &row.config_id,
                    &row.application,
                    &row.status,
                    &row.build_millis,
                    &row.end_millis,
                    &row.config_json,
                    &row.request_json,
                    &row.params_json,
                    &row.outcome_json,
                ],
            )
            .await
            .map_err(db)?;
            Ok(())
        })
    }

    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Execution>, RepositoryError>> {
        Box::pin(async move {
            let conn = self.pool.get().await?;
            let row = conn
                .query_opt(
                    &format!("SELECT {EXECUTION_COLUMNS} FROM kayenta_executions WHERE id = $1"),
                    &[&id],
                )
                .await
                .map_err(db)?;
            Ok(row
                .map(|r| execution_row(&r).into_execution())
                .transpose()?)
        })
    }

    fn finish<'a>(
        &'a self,
        id: &'a str,
        outcome: Outcome,
        end_millis: i64,
    ) -> BoxFuture<'a, Result<(), RepositoryError>> {
        Box::pin(async move {
            let json = to_json(&outcome)?;
            let conn = self.pool.get().await?;
            let updated = conn
                .execute(
                    "UPDATE kayenta_executions SET status = $1, end_millis = $2, \
                     outcome_json = $3 WHERE id = $4 AND status = 'running'",
                    &[&outcome.status(), &end_millis, &json, &id],
                )
                .await
                .map_err(db)?;
            if updated == 0
                && conn
                    .query_opt("SELECT 1 FROM kayenta_executions WHERE id = $1", &[&id])
                    .await
                    .map_err(db)?
                    .is_none()
            {
                return Err(StoreError::Backend(format!("no kayenta execution {id:?}")).into());
            }
            Ok(())
        })
    }

    fn list<'a>(
        &'a self,
        filter: &'a ExecutionFilter,
    ) -> BoxFuture<'a, Result<Vec<Execution>, RepositoryError>> {
        Box::pin(async move {
            let conn = self.pool.get().await?;
            let rows = conn
                .query(
                    &format!(
                        "SELECT {EXECUTION_COLUMNS} FROM kayenta_executions \
                         WHERE ($1::TEXT IS NULL OR application = $1) \
                         AND ($2::TEXT[] IS NULL OR status = ANY($2)) \
                         ORDER BY build_millis DESC, id DESC LIMIT $3 OFFSET $4"
                    ),
                    &[
                        &filter.application,
                        &filter.statuses,
                        &sql_limit(filter.limit),
                        &sql_limit(Some(filter.offset)),
                    ],
                )
                .await
                .map_err(db)?;
            Ok(rows
                .iter()
                .map(|r| execution_row(r).into_execution())
                .collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn delete_ended_before(
        &self,
        cutoff_millis: i64,
    ) -> BoxFuture<'_, Result<u64, RepositoryError>> {
        Box::pin(async move {
            let conn = self.pool.get().await?;
            let deleted = conn
                .execute(
                    "DELETE FROM kayenta_executions WHERE status <> 'running' \
                     AND COALESCE(end_millis, build_millis) < $1",
                    &[&cutoff_millis],
                )
                .await
                .map_err(db)?;
            Ok(deleted)
        })
    }
}
