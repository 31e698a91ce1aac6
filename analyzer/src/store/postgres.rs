//! The PostgreSQL backend: one store shared by several replicas.
//!
//! Replicas coordinate only through the database. Starting a run is an
//! `INSERT … ON CONFLICT DO NOTHING` against a unique index on open runs,
//! then a read of whichever row won; recording a look is the same against
//! the `(run_id, number)` primary key, so when two replicas judge the same
//! delivery, one row is written and the loser returns the winner's look.
//! Migrations take a transaction-scoped advisory lock, so replicas starting
//! together migrate once.
//!
//! Connections: a small pool (tokio-postgres clients, no TLS: run it on a
//! trusted network or through a local proxy), reconnecting when a
//! connection broke. The URL holds a password and is never logged.

mod kayenta;

use super::migrations::{self, Migration, Step};
use super::{
    action_of, from_json, step_opening, to_json, BoxFuture, EventRecord, MigrationStatus, NewRun,
    NotificationRecord, OpenRun, Recorded, RunDetail, RunFilter, RunSummary, RunSync,
    SequentialStates, Store, StoreError, StoredLook,
};
use crate::engine::run::{Look, RunKey, StepOpening};
use std::sync::{Arc, Mutex};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_postgres::{Client, NoTls, Row};

/// Key of the advisory lock that serialises migrations across replicas.
const MIGRATION_LOCK: i64 = 0x0076_6572_6469_6374; // "verdict"

fn db(e: tokio_postgres::Error) -> StoreError {
    StoreError::Backend(format!("postgres: {e}"))
}

/// A fixed-size pool of clients.
struct Pool {
    url: String,
    idle: Mutex<Vec<Client>>,
    permits: Semaphore,
}

/// A client on loan from the pool; returned on drop unless it broke.
struct Conn<'a> {
    client: Option<Client>,
    pool: &'a Pool,
    _permit: SemaphorePermit<'a>,
}

impl std::ops::Deref for Conn<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client.as_ref().expect("present until drop")
    }
}

impl std::ops::DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().expect("present until drop")
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        if let Some(client) = self.client.take().filter(|c| !c.is_closed()) {
            self.pool
                .idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(client);
        }
    }
}

impl Pool {
    async fn connect(url: &str) -> Result<Client, StoreError> {
        let (client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .map_err(|e| StoreError::Open(format!("postgres: {e}")))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!("postgres connection closed: {e}");
            }
        });
        Ok(client)
    }

    async fn get(&self) -> Result<Conn<'_>, StoreError> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| StoreError::Backend(format!("postgres pool: {e}")))?;
        let idle = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.retain(|c| !c.is_closed());
            idle.pop()
        };
        let client = match idle {
            Some(c) => c,
            None => Self::connect(&self.url).await?,
        };
        Ok(Conn {
            client: Some(client),
            pool: self,
            _permit: permit,
        })
    }
}

/// The run store in a PostgreSQL database.
pub struct PostgresStore {
    pool: Pool,
}

impl PostgresStore {
    /// Connects (one connection up front, so a wrong URL fails at start)
    /// with at most `pool_size` connections.
    pub async fn connect(url: &str, pool_size: usize) -> Result<Self, StoreError> {
        let first = Pool::connect(url).await?;
        Ok(PostgresStore {
            pool: Pool {
                url: url.to_string(),
                idle: Mutex::new(vec![first]),
                permits: Semaphore::new(pool_size.max(1)),
            },
        })
    }

    /// The migration runner (see [`super::sqlite::SqliteStore::run_migrations`]).
    pub async fn run_migrations(
        &self,
        list: &[Migration],
        step: Step,
        once: bool,
    ) -> Result<Vec<i64>, StoreError> {
        let mut conn = self.pool.get().await?;
        let mut done = Vec::new();
        loop {
            let tx = conn.transaction().await.map_err(db)?;
            let applied: Vec<i64> = locked_applied(&tx)
                .await?
                .into_iter()
                .map(|(v, _)| v)
                .collect();
            let Some(m) = migrations::next(list, &applied, step)? else {
                tx.commit().await.map_err(db)?;
                break;
            };
            // Dropping `tx` on any error below rolls the whole migration back.
            match step {
                Step::Up => {
                    tx.batch_execute(m.up)
                        .await
                        .map_err(|e| migrations::failed(&m, e))?;
                    tx.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                        &[&m.version, &m.name, &crate::clock::now()],
                    )
                    .await
                    .map_err(|e| migrations::failed(&m, e))?;
                }
                Step::Down => {
                    tx.batch_execute(m.down)
                        .await
                        .map_err(|e| migrations::failed(&m, e))?;
                    tx.execute(
                        "DELETE FROM schema_migrations WHERE version = $1",
                        &[&m.version],
                    )
                    .await
                    .map_err(|e| migrations::failed(&m, e))?;
                }
            }
            tx.commit().await.map_err(|e| migrations::failed(&m, e))?;
            done.push(m.version);
            if once {
                break;
            }
        }
        Ok(done)
    }

    /// Names of the tables in the current schema (tests check migrations).
    pub async fn tables(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.pool.get().await?;
        let rows = conn
            .query(
                "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1",
                &[],
            )
            .await
            .map_err(db)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}

/// Takes the migration lock, makes sure `schema_migrations` exists and
/// reads it, inside the caller's transaction.
async fn locked_applied(
    tx: &tokio_postgres::Transaction<'_>,
) -> Result<Vec<(i64, f64)>, StoreError> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version BIGINT PRIMARY KEY,
             name TEXT NOT NULL,
             applied_at DOUBLE PRECISION NOT NULL
         )",
    )
    .await
    .map_err(db)?;
    let rows = tx
        .query(
            "SELECT version, applied_at FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .map_err(db)?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

const SUMMARY_COLUMNS: &str = "id, analysis, key_json, namespace, name, config_hash, \
     verdict_version, started_at, ended_at, outcome, final_decision, final_score, \
     look_count, last_look_at";

fn summary_of(r: &Row) -> Result<RunSummary, StoreError> {
    let decision: Option<String> = r.get(10);
    let looks: i64 = r.get(12);
    Ok(RunSummary {
        id: r.get(0),
        analysis: r.get(1),
        key: from_json("run key", r.get(2))?,
        namespace: r.get(3),
        name: r.get(4),
        config_hash: r.get(5),
        verdict_version: r.get(6),
        started_at: r.get(7),
        ended_at: r.get(8),
        outcome: r.get(9),
        decision: decision.as_deref().map(action_of).transpose()?,
        score: r.get(11),
        looks: looks.max(0) as u64,
        last_look_at: r.get(13),
    })
}

fn stored_look(r: &Row) -> Result<StoredLook, StoreError> {
    Ok(StoredLook {
        look: from_json("look", r.get(0))?,
        sequential: from_json("sequential state", r.get(1))?,
    })
}

impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn kayenta(self: std::sync::Arc<Self>) -> crate::kayenta_api::repository::KayentaRepositories {
        crate::kayenta_api::repository::KayentaRepositories {
            configs: self.clone(),
            executions: self,
        }
    }

    fn open_run<'a>(
        &'a self,
        run: &'a NewRun,
        keep_looks: usize,
    ) -> BoxFuture<'a, Result<OpenRun, StoreError>> {
        Box::pin(async move {
            let key_text = run.key.to_string();
            let key_json = to_json(&run.key)?;
            let vars_json = to_json(&run.vars)?;
            let (namespace, name) = run.namespace_and_name();
            let conn = self.pool.get().await?;
            conn.execute(
                "INSERT INTO runs (analysis, run_key, key_json, controller, namespace, name, \
                 config_hash, verdict_version, started_at, window_start, vars_json) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING",
                &[
                    &run.analysis,
                    &key_text,
                    &key_json,
                    &run.controller(),
                    &namespace,
                    &name,
                    &run.config_hash,
                    &run.verdict_version,
                    &run.started_at,
                    &run.window_start,
                    &vars_json,
                ],
            )
            .await
            .map_err(db)?;
            let row = conn
                .query_opt(
                    "SELECT id, started_at, window_start, vars_json, step, step_opened_at, \
                     step_after_look FROM runs \
                     WHERE analysis = $1 AND run_key = $2 AND ended_at IS NULL",
                    &[&run.analysis, &key_text],
                )
                .await
                .map_err(db)?
                .ok_or_else(|| {
                    StoreError::Backend(format!(
                        "run {key_text} was closed while it was being opened"
                    ))
                })?;
            let id: i64 = row.get(0);
            let rows = conn
                .query(
                    "SELECT look_json, state_json FROM looks WHERE run_id = $1 \
                     ORDER BY number DESC LIMIT $2",
                    &[&id, &(keep_looks as i64)],
                )
                .await
                .map_err(db)?;
            let sequential = match rows.first() {
                Some(r) => stored_look(r)?.sequential,
                None => SequentialStates::new(),
            };
            let mut looks = rows
                .iter()
                .map(|r| from_json::<Look>("look", r.get(0)))
                .collect::<Result<Vec<_>, _>>()?;
            looks.reverse();
            Ok(OpenRun {
                id,
                started_at: row.get(1),
                window_start: row.get(2),
                vars: from_json("run variables", row.get(3))?,
                looks,
                sequential,
                opened: step_opening(row.get(4), row.get(5), row.get(6)),
            })
        })
    }

    fn sync_run(&self, id: i64, after: usize) -> BoxFuture<'_, Result<RunSync, StoreError>> {
        Box::pin(async move {
            let conn = self.pool.get().await?;
            let (open, opened): (Option<bool>, Option<Option<StepOpening>>) = conn
                .query_opt(
                    "SELECT ended_at IS NULL, step, step_opened_at, step_after_look FROM runs \
                     WHERE id = $1",
                    &[&id],
                )
                .await
                .map_err(db)?
                .map(|r| (r.get(0), step_opening(r.get(1), r.get(2), r.get(3))))
                .unzip();
            let newer = conn
                .query_opt(
                    "SELECT look_json, state_json FROM looks WHERE run_id = $1 AND number > $2 \
                     ORDER BY number DESC LIMIT 1",
                    &[&id, &(after as i64)],
                )
                .await
                .map_err(db)?
                .map(|r| stored_look(&r))
                .transpose()?;
            Ok(RunSync {
                closed: open != Some(true),
                newer,
                opened: opened.flatten(),
            })
        })
    }

    fn open_step<'a>(
        &'a self,
        id: i64,
        opening: &'a StepOpening,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let conn = self.pool.get().await?;
            let changed = conn
                .execute(
                    "UPDATE runs SET step = $2, step_opened_at = $3, step_after_look = $4 \
                     WHERE id = $1 AND step = $2 - 1 AND ended_at IS NULL",
                    &[
                        &id,
                        &(opening.step as i64),
                        &opening.at,
                        &(opening.after_look as i64),
                    ],
                )
                .await
                .map_err(db)?;
            Ok(changed == 1)
        })
    }

    fn record_look<'a>(
        &'a self,
        id: i64,
        look: &'a Arc<Look>,
        sequential: &'a SequentialStates,
    ) -> BoxFuture<'a, Result<Recorded, StoreError>> {
        Box::pin(async move {
            let look: &Look = look;
            let look_json = to_json(look)?;
            let state_json = to_json(sequential)?;
            let reasons_json = to_json(&look.decision.reasons)?;
            let number = look.number as i64;
            let decision = look.decision.action.as_str();
            let mut conn = self.pool.get().await?;
            let tx = conn.transaction().await.map_err(db)?;
            // A concurrent insert of the same number waits here for the
            // other transaction, then inserts nothing.
            let inserted = tx
                .execute(
                    "INSERT INTO looks (run_id, number, time, window_start, window_end, weight, \
                     score, decision, reasons_json, look_json, state_json) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING",
                    &[
                        &id,
                        &number,
                        &look.time,
                        &look.window.start,
                        &look.window.end,
                        &look.weight,
                        &look.decision.score,
                        &decision,
                        &reasons_json,
                        &look_json,
                        &state_json,
                    ],
                )
                .await
                .map_err(db)?;
            if inserted == 0 {
                let row = tx
                    .query_one(
                        "SELECT look_json, state_json FROM looks WHERE run_id = $1 AND number = $2",
                        &[&id, &number],
                    )
                    .await
                    .map_err(db)?;
                return Ok(Recorded::Lost(Box::new(stored_look(&row)?)));
            }
            tx.execute(
                "UPDATE runs SET final_decision = $2, final_score = $3, \
                 look_count = GREATEST(look_count, $4), last_look_at = $5 WHERE id = $1",
                &[&id, &decision, &look.decision.score, &number, &look.time],
            )
            .await
            .map_err(db)?;
            tx.commit().await.map_err(db)?;
            Ok(Recorded::Inserted)
        })
    }

    fn close_run<'a>(
        &'a self,
        analysis: &'a str,
        key: &'a RunKey,
        outcome: &'a str,
        at: f64,
    ) -> BoxFuture<'a, Result<Option<i64>, StoreError>> {
        Box::pin(async move {
            let conn = self.pool.get().await?;
            let row = conn
                .query_opt(
                    "UPDATE runs SET ended_at = $3, outcome = $4 \
                     WHERE analysis = $1 AND run_key = $2 AND ended_at IS NULL RETURNING id",
                    &[&analysis, &key.to_string(), &at, &outcome],
                )
                .await
                .map_err(db)?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn record_event<'a>(&'a self, e: &'a EventRecord) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let payload = to_json(&e.metadata)?;
            let conn = self.pool.get().await?;
            conn.execute(
                "INSERT INTO flagger_events (received_at, analysis, run_key, run_id, namespace, \
                 name, phase, event_type, message, payload_json) VALUES ($1, $2, $3, \
                 (SELECT max(id) FROM runs WHERE analysis = $2 AND run_key = $3), \
                 $4, $5, $6, $7, $8, $9)",
                &[
                    &e.received_at,
                    &e.analysis,
                    &e.key.to_string(),
                    &e.namespace,
                    &e.name,
                    &e.phase,
                    &e.event_type,
                    &e.message,
                    &payload,
                ],
            )
            .await
            .map_err(db)?;
            Ok(())
        })
    }

    fn record_notification<'a>(
        &'a self,
        n: &'a NotificationRecord,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let conn = self.pool.get().await?;
            conn.execute(
                "INSERT INTO notifications (run_id, sent_at, channel, decision, attempts, ok, error) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &n.run_id,
                    &n.sent_at,
                    &n.channel,
                    &n.decision.as_str(),
                    &i64::from(n.attempts),
                    &n.ok,
                    &n.error,
                ],
            )
            .await
            .map_err(db)?;
            Ok(())
        })
    }

    fn list_runs<'a>(
        &'a self,
        f: &'a RunFilter,
    ) -> BoxFuture<'a, Result<Vec<RunSummary>, StoreError>> {
        Box::pin(async move {
            let conn = self.pool.get().await?;
            let sql = format!(
                "SELECT {SUMMARY_COLUMNS} FROM runs WHERE \
                 ($1::text IS NULL OR namespace = $1) AND ($2::text IS NULL OR name = $2) AND \
                 ($3::text IS NULL OR analysis = $3) AND ($4::text IS NULL OR final_decision = $4) AND \
                 ($5::float8 IS NULL OR started_at >= $5) AND ($6::float8 IS NULL OR started_at < $6) \
                 ORDER BY started_at DESC, id DESC LIMIT $7"
            );
            let rows = conn
                .query(
                    &sql,
                    &[
                        &f.namespace,
                        &f.name,
                        &f.analysis,
                        &f.decision.map(|d| d.as_str()),
                        &f.since,
                        &f.until,
                        &(f.effective_limit() as i64),
                    ],
                )
                .await
                .map_err(db)?;
            rows.iter().map(summary_of).collect()
        })
    }

    fn get_run(&self, id: i64) -> BoxFuture<'_, Result<Option<RunDetail>, StoreError>> {
        Box::pin(async move {
            let conn = self.pool.get().await?;
            let Some(row) = conn
                .query_opt(
                    &format!("SELECT {SUMMARY_COLUMNS}, vars_json FROM runs WHERE id = $1"),
                    &[&id],
                )
                .await
                .map_err(db)?
            else {
                return Ok(None);
            };
            let summary = summary_of(&row)?;
            let looks = conn
                .query(
                    "SELECT look_json FROM looks WHERE run_id = $1 ORDER BY number",
                    &[&id],
                )
                .await
                .map_err(db)?
                .iter()
                .map(|r| from_json::<Look>("look", r.get(0)))
                .collect::<Result<Vec<_>, _>>()?;
            let events = conn
                .query(
                    "SELECT received_at, analysis, run_id, namespace, name, phase, event_type, \
                     message, payload_json FROM flagger_events WHERE run_id = $1 ORDER BY id",
                    &[&id],
                )
                .await
                .map_err(db)?
                .iter()
                .map(|r| {
                    Ok(EventRecord {
                        received_at: r.get(0),
                        analysis: r.get(1),
                        key: summary.key.clone(),
                        run_id: r.get(2),
                        namespace: r.get(3),
                        name: r.get(4),
                        phase: r.get(5),
                        event_type: r.get(6),
                        message: r.get(7),
                        metadata: from_json("event metadata", r.get(8))?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let notifications = conn
                .query(
                    "SELECT sent_at, channel, decision, attempts, ok, error FROM notifications \
                     WHERE run_id = $1 ORDER BY id",
                    &[&id],
                )
                .await
                .map_err(db)?
                .iter()
                .map(|r| {
                    let attempts: i64 = r.get(3);
                    Ok(NotificationRecord {
                        run_id: id,
                        sent_at: r.get(0),
                        channel: r.get(1),
                        decision: action_of(r.get(2))?,
                        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                        ok: r.get(4),
                        error: r.get(5),
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok(Some(RunDetail {
                run: summary,
                vars: from_json("run variables", row.get(14))?,
                looks,
                events,
                notifications,
            }))
        })
    }

    fn delete_looks_before(&self, cutoff: f64) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            let conn = self.pool.get().await?;
            conn.execute(
                "DELETE FROM looks WHERE time < $1 AND \
                 number < (SELECT look_count FROM runs WHERE runs.id = looks.run_id)",
                &[&cutoff],
            )
            .await
            .map_err(db)
        })
    }

    fn migration_status(&self) -> BoxFuture<'_, Result<Vec<MigrationStatus>, StoreError>> {
        Box::pin(async move {
            let mut conn = self.pool.get().await?;
            let tx = conn.transaction().await.map_err(db)?;
            let applied = locked_applied(&tx).await?;
            tx.commit().await.map_err(db)?;
            migrations::status(migrations::POSTGRES, &applied)
        })
    }

    fn migrate_up(&self) -> BoxFuture<'_, Result<Vec<i64>, StoreError>> {
        Box::pin(self.run_migrations(migrations::POSTGRES, Step::Up, false))
    }

    fn migrate_down(&self) -> BoxFuture<'_, Result<Option<i64>, StoreError>> {
        Box::pin(async move {
            let done = self
                .run_migrations(migrations::POSTGRES, Step::Down, true)
                .await?;
            Ok(done.first().copied())
        })
    }
}
