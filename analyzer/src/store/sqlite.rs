//! The SQLite backend: the run store in one file, no other service.
//!
//! One connection, behind a mutex, used on tokio's blocking pool: SQLite
//! serialises writers anyway, and a look writes a few rows. The journal is
//! WAL with `synchronous=FULL`: a committed transaction is on disk before
//! the commit returns, so a look the webhook was answered with survives
//! `kill -9` and power loss. Writes take the lock up front (`BEGIN
//! IMMEDIATE`) so two processes on one file queue rather than deadlock.

mod kayenta;

use super::migrations::{self, Migration, Step};
use super::{
    action_of, from_json, step_opening, to_json, BoxFuture, EventRecord, MigrationStatus, NewRun,
    NotificationRecord, OpenRun, Recorded, RunDetail, RunFilter, RunSummary, RunSync,
    SequentialStates, Store, StoreError, StoredLook,
};
use crate::engine::run::{Look, RunKey, StepOpening};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a writer waits for another process's write to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The run store in a SQLite file.
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(format!("sqlite: {e}"))
}

impl SqliteStore {
    /// Opens (creating when absent) the database at `path`. Its directory
    /// must exist: a missing directory is a configuration mistake, not
    /// something to paper over.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let path = path.to_path_buf();
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection, StoreError> {
            let open_error = |e: rusqlite::Error| {
                StoreError::Open(format!("sqlite database {}: {e}", path.display()))
            };
            let conn = Connection::open(&path).map_err(open_error)?;
            conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
            let mode: String = conn
                .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
                .map_err(open_error)?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::Open(format!(
                    "sqlite database {}: cannot use the WAL journal (got {mode})",
                    path.display()
                )));
            }
            conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
                .map_err(open_error)?;
            Ok(conn)
        })
        .await
        .map_err(|e| StoreError::Open(format!("sqlite open task: {e}")))??;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` on the connection, on the blocking pool.
    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            // A panic in another call poisons the lock but leaves the
            // connection usable (its transaction was rolled back on drop).
            let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("sqlite task: {e}")))?
    }

    /// The migration runner: applies (or reverts) migrations of `list` one
    /// per transaction, all pending ones or only the next (`once`). Public
    /// so tests can run a deliberately broken list through it.
    pub async fn run_migrations(
        &self,
        list: Vec<Migration>,
        step: Step,
        once: bool,
    ) -> Result<Vec<i64>, StoreError> {
        self.call(move |conn| run_migrations(conn, &list, step, once))
            .await
    }

    /// Applied migrations: (version, applied_at).
    async fn applied(&self) -> Result<Vec<(i64, f64)>, StoreError> {
        self.call(|conn| {
            create_migrations_table(conn)?;
            let mut stmt = conn
                .prepare("SELECT version, applied_at FROM schema_migrations ORDER BY version")
                .map_err(db)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(db)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db)?;
            Ok(rows)
        })
        .await
    }

    /// Names of the tables in the database (tests check what migrations did).
    pub async fn tables(&self) -> Result<Vec<String>, StoreError> {
        self.call(|conn| {
            let mut stmt = conn
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
                .map_err(db)?;
            let rows = stmt
                .query_map([], |r| r.get(0))
                .map_err(db)?
                .collect::<Result<Vec<String>, _>>()
                .map_err(db)?;
            Ok(rows)
        })
        .await
    }
}

fn create_migrations_table(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version INTEGER PRIMARY KEY,
             name TEXT NOT NULL,
             applied_at REAL NOT NULL
         )",
    )
    .map_err(db)
}

fn run_migrations(
    conn: &mut Connection,
    list: &[Migration],
    step: Step,
    once: bool,
) -> Result<Vec<i64>, StoreError> {
    create_migrations_table(conn)?;
    let mut done = Vec::new();
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let applied: Vec<i64> = {
            let mut stmt = tx
                .prepare("SELECT version FROM schema_migrations")
                .map_err(db)?;
            let rows = stmt
                .query_map([], |r| r.get(0))
                .map_err(db)?
                .collect::<Result<Vec<i64>, _>>()
                .map_err(db)?;
            rows
        };
        let Some(m) = migrations::next(list, &applied, step)? else {
            break;
        };
        // Dropping `tx` on any error below rolls the whole migration back.
        match step {
            Step::Up => {
                tx.execute_batch(m.up)
                    .map_err(|e| migrations::failed(&m, e))?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
                    params![m.version, m.name, crate::clock::now()],
                )
                .map_err(|e| migrations::failed(&m, e))?;
            }
            Step::Down => {
                tx.execute_batch(m.down)
                    .map_err(|e| migrations::failed(&m, e))?;
                tx.execute(
                    "DELETE FROM schema_migrations WHERE version = ?1",
                    params![m.version],
                )
                .map_err(|e| migrations::failed(&m, e))?;
            }
        }
        tx.commit().map_err(|e| migrations::failed(&m, e))?;
        done.push(m.version);
        if once {
            break;
        }
    }
    Ok(done)
}

/// Columns of a [`RunSummary`], in [`summary_of`]'s order.
const SUMMARY_COLUMNS: &str = "id, analysis, key_json, namespace, name, config_hash, \
     verdict_version, started_at, ended_at, outcome, final_decision, final_score, \
     look_count, last_look_at";

/// A rusqlite row's [`RunSummary`] columns, before JSON decoding.
type SummaryRow = (
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    f64,
    Option<f64>,
    Option<String>,
    Option<String>,
    Option<f64>,
    i64,
    Option<f64>,
);

fn summary_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SummaryRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
        r.get(12)?,
        r.get(13)?,
    ))
}

fn summary_of(row: SummaryRow) -> Result<RunSummary, StoreError> {
    let (
        id,
        analysis,
        key_json,
        namespace,
        name,
        config_hash,
        verdict_version,
        started_at,
        ended_at,
        outcome,
        decision,
        score,
        looks,
        last_look_at,
    ) = row;
    Ok(RunSummary {
        id,
        analysis,
        key: from_json("run key", &key_json)?,
        namespace,
        name,
        config_hash,
        verdict_version,
        started_at,
        ended_at,
        outcome,
        decision: decision.as_deref().map(action_of).transpose()?,
        score,
        looks: looks.max(0) as u64,
        last_look_at,
    })
}

fn stored_look(look_json: &str, state_json: &str) -> Result<StoredLook, StoreError> {
    Ok(StoredLook {
        look: from_json("look", look_json)?,
        sequential: from_json("sequential state", state_json)?,
    })
}

impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn kayenta(self: Arc<Self>) -> crate::kayenta_api::repository::KayentaRepositories {
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
            let run = run.clone();
            let key_text = run.key.to_string();
            let key_json = to_json(&run.key)?;
            let vars_json = to_json(&run.vars)?;
            let (namespace, name) = run.namespace_and_name();
            self.call(move |conn| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(db)?;
                tx.execute(
                    "INSERT INTO runs (analysis, run_key, key_json, controller, namespace, name, \
                     config_hash, verdict_version, started_at, window_start, vars_json) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT DO NOTHING",
                    params![
                        run.analysis,
                        key_text,
                        key_json,
                        run.controller(),
                        namespace,
                        name,
                        run.config_hash,
                        run.verdict_version,
                        run.started_at,
                        run.window_start,
                        vars_json
                    ],
                )
                .map_err(db)?;
                let (id, started_at, window_start, vars_json, opened) = tx
                    .query_row(
                        "SELECT id, started_at, window_start, vars_json, step, step_opened_at, \
                         step_after_look FROM runs \
                         WHERE analysis = ?1 AND run_key = ?2 AND ended_at IS NULL",
                        params![run.analysis, key_text],
                        |r| {
                            let opened = step_opening(r.get(4)?, r.get(5)?, r.get(6)?);
                            Ok((
                                r.get::<_, i64>(0)?,
                                r.get::<_, f64>(1)?,
                                r.get::<_, f64>(2)?,
                                r.get::<_, String>(3)?,
                                opened,
                            ))
                        },
                    )
                    .map_err(db)?;
                let mut stmt = tx
                    .prepare(
                        "SELECT look_json, state_json FROM looks WHERE run_id = ?1 \
                         ORDER BY number DESC LIMIT ?2",
                    )
                    .map_err(db)?;
                let rows = stmt
                    .query_map(params![id, keep_looks as i64], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                    })
                    .map_err(db)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(db)?;
                drop(stmt);
                tx.commit().map_err(db)?;
                let mut looks = Vec::with_capacity(rows.len());
                let mut sequential = SequentialStates::new();
                for (i, (look_json, state_json)) in rows.iter().enumerate() {
                    if i == 0 {
                        sequential = from_json("sequential state", state_json)?;
                    }
                    looks.push(from_json::<Look>("look", look_json)?);
                }
                looks.reverse();
                Ok(OpenRun {
                    id,
                    started_at,
                    window_start,
                    vars: from_json("run variables", &vars_json)?,
                    looks,
                    sequential,
                    opened,
                })
            })
            .await
        })
    }

    fn sync_run(&self, id: i64, after: usize) -> BoxFuture<'_, Result<RunSync, StoreError>> {
        Box::pin(self.call(move |conn| {
            let (open, opened) = conn
                .query_row(
                    "SELECT ended_at IS NULL, step, step_opened_at, step_after_look FROM runs \
                     WHERE id = ?1",
                    params![id],
                    |r| {
                        Ok((
                            r.get::<_, bool>(0)?,
                            step_opening(r.get(1)?, r.get(2)?, r.get(3)?),
                        ))
                    },
                )
                .optional()
                .map_err(db)?
                .unzip();
            let newer = conn
                .query_row(
                    "SELECT look_json, state_json FROM looks WHERE run_id = ?1 AND number > ?2 \
                     ORDER BY number DESC LIMIT 1",
                    params![id, after as i64],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
                )
                .optional()
                .map_err(db)?
                .map(|(l, s)| stored_look(&l, &s))
                .transpose()?;
            Ok(RunSync {
                closed: open != Some(true),
                newer,
                opened: opened.flatten(),
            })
        }))
    }

    fn open_step<'a>(
        &'a self,
        id: i64,
        opening: &'a StepOpening,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let o = *opening;
        Box::pin(self.call(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE runs SET step = ?2, step_opened_at = ?3, step_after_look = ?4 \
                     WHERE id = ?1 AND step = ?2 - 1 AND ended_at IS NULL",
                    params![id, o.step as i64, o.at, o.after_look as i64],
                )
                .map_err(db)?;
            Ok(changed == 1)
        }))
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
            let (time, window, weight) = (look.time, look.window, look.weight);
            let (score, decision) = (look.decision.score, look.decision.action.as_str());
            self.call(move |conn| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(db)?;
                let inserted = tx
                    .execute(
                        "INSERT INTO looks (run_id, number, time, window_start, window_end, weight, \
                         score, decision, reasons_json, look_json, state_json) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT DO NOTHING",
                        params![
                            id,
                            number,
                            time,
                            window.start,
                            window.end,
                            weight,
                            score,
                            decision,
                            reasons_json,
                            look_json,
                            state_json
                        ],
                    )
                    .map_err(db)?;
                if inserted == 0 {
                    let (l, s): (String, String) = tx
                        .query_row(
                            "SELECT look_json, state_json FROM looks WHERE run_id = ?1 AND number = ?2",
                            params![id, number],
                            |r| Ok((r.get(0)?, r.get(1)?)),
                        )
                        .map_err(db)?;
                    return Ok(Recorded::Lost(Box::new(stored_look(&l, &s)?)));
                }
                tx.execute(
                    "UPDATE runs SET final_decision = ?2, final_score = ?3, \
                     look_count = max(look_count, ?4), last_look_at = ?5 WHERE id = ?1",
                    params![id, decision, score, number, time],
                )
                .map_err(db)?;
                tx.commit().map_err(db)?;
                Ok(Recorded::Inserted)
            })
            .await
        })
    }

    fn close_run<'a>(
        &'a self,
        analysis: &'a str,
        key: &'a RunKey,
        outcome: &'a str,
        at: f64,
    ) -> BoxFuture<'a, Result<Option<i64>, StoreError>> {
        let (analysis, key, outcome) = (analysis.to_string(), key.to_string(), outcome.to_string());
        Box::pin(self.call(move |conn| {
            conn.query_row(
                "UPDATE runs SET ended_at = ?3, outcome = ?4 \
                 WHERE analysis = ?1 AND run_key = ?2 AND ended_at IS NULL RETURNING id",
                params![analysis, key, at, outcome],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)
        }))
    }

    fn record_event<'a>(&'a self, event: &'a EventRecord) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let e = event.clone();
            let payload = to_json(&e.metadata)?;
            self.call(move |conn| {
                conn.execute(
                    "INSERT INTO flagger_events (received_at, analysis, run_key, run_id, namespace, \
                     name, phase, event_type, message, payload_json) VALUES (?1, ?2, ?3, \
                     (SELECT max(id) FROM runs WHERE analysis = ?2 AND run_key = ?3), \
                     ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        e.received_at,
                        e.analysis,
                        e.key.to_string(),
                        e.namespace,
                        e.name,
                        e.phase,
                        e.event_type,
                        e.message,
                        payload
                    ],
                )
                .map_err(db)?;
                Ok(())
            })
            .await
        })
    }

    fn record_notification<'a>(
        &'a self,
        n: &'a NotificationRecord,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let n = n.clone();
        Box::pin(self.call(move |conn| {
            conn.execute(
                "INSERT INTO notifications (run_id, sent_at, channel, decision, attempts, ok, error) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    n.run_id,
                    n.sent_at,
                    n.channel,
                    n.decision.as_str(),
                    n.attempts,
                    n.ok,
                    n.error
                ],
            )
            .map_err(db)?;
            Ok(())
        }))
    }

    fn list_runs<'a>(
        &'a self,
        filter: &'a RunFilter,
    ) -> BoxFuture<'a, Result<Vec<RunSummary>, StoreError>> {
        let f = filter.clone();
        Box::pin(self.call(move |conn| {
            let sql = format!(
                "SELECT {SUMMARY_COLUMNS} FROM runs WHERE \
                 (?1 IS NULL OR namespace = ?1) AND (?2 IS NULL OR name = ?2) AND \
                 (?3 IS NULL OR analysis = ?3) AND (?4 IS NULL OR final_decision = ?4) AND \
                 (?5 IS NULL OR started_at >= ?5) AND (?6 IS NULL OR started_at < ?6) \
                 ORDER BY started_at DESC, id DESC LIMIT ?7"
            );
            let mut stmt = conn.prepare(&sql).map_err(db)?;
            let rows = stmt
                .query_map(
                    params![
                        f.namespace,
                        f.name,
                        f.analysis,
                        f.decision.map(|d| d.as_str()),
                        f.since,
                        f.until,
                        f.effective_limit() as i64
                    ],
                    summary_row,
                )
                .map_err(db)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db)?;
            rows.into_iter().map(summary_of).collect()
        }))
    }

    fn get_run(&self, id: i64) -> BoxFuture<'_, Result<Option<RunDetail>, StoreError>> {
        Box::pin(self.call(move |conn| {
            let Some((row, vars_json)) = conn
                .query_row(
                    &format!("SELECT {SUMMARY_COLUMNS}, vars_json FROM runs WHERE id = ?1"),
                    params![id],
                    |r| Ok((summary_row(r)?, r.get::<_, String>(14)?)),
                )
                .optional()
                .map_err(db)?
            else {
                return Ok(None);
            };
            let looks = {
                let mut stmt = conn
                    .prepare("SELECT look_json FROM looks WHERE run_id = ?1 ORDER BY number")
                    .map_err(db)?;
                let texts = stmt
                    .query_map(params![id], |r| r.get::<_, String>(0))
                    .map_err(db)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(db)?;
                texts
                    .iter()
                    .map(|t| from_json::<Look>("look", t))
                    .collect::<Result<Vec<_>, _>>()?
            };
            let summary = summary_of(row)?;
            let events = {
                let mut stmt = conn
                    .prepare(
                        "SELECT received_at, analysis, run_id, namespace, name, phase, event_type, \
                         message, payload_json FROM flagger_events WHERE run_id = ?1 ORDER BY id",
                    )
                    .map_err(db)?;
                let rows = stmt
                    .query_map(params![id], |r| {
                        Ok((
                            r.get::<_, f64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, Option<i64>>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, String>(4)?,
                            r.get::<_, String>(5)?,
                            r.get::<_, String>(6)?,
                            r.get::<_, String>(7)?,
                            r.get::<_, String>(8)?,
                        ))
                    })
                    .map_err(db)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(db)?;
                rows.into_iter()
                    .map(
                        |(
                            received_at,
                            analysis,
                            run_id,
                            namespace,
                            name,
                            phase,
                            event_type,
                            message,
                            payload,
                        )| {
                            Ok(EventRecord {
                                received_at,
                                analysis,
                                key: summary.key.clone(),
                                run_id,
                                namespace,
                                name,
                                phase,
                                event_type,
                                message,
                                metadata: from_json("event metadata", &payload)?,
                            })
                        },
                    )
                    .collect::<Result<Vec<_>, StoreError>>()?
            };
            let notifications = {
                let mut stmt = conn
                    .prepare(
                        "SELECT sent_at, channel, decision, attempts, ok, error FROM notifications \
                         WHERE run_id = ?1 ORDER BY id",
                    )
                    .map_err(db)?;
                let rows = stmt
                    .query_map(params![id], |r| {
                        Ok((
                            r.get::<_, f64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, u32>(3)?,
                            r.get::<_, bool>(4)?,
                            r.get::<_, Option<String>>(5)?,
                        ))
                    })
                    .map_err(db)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(db)?;
                rows.into_iter()
                    .map(|(sent_at, channel, decision, attempts, ok, error)| {
                        Ok(NotificationRecord {
                            run_id: id,
                            sent_at,
                            channel,
                            decision: action_of(&decision)?,
                            attempts,
                            ok,
                            error,
                        })
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?
            };
            Ok(Some(RunDetail {
                run: summary,
                vars: from_json("run variables", &vars_json)?,
                looks,
                events,
                notifications,
            }))
        }))
    }

    fn delete_looks_before(&self, cutoff: f64) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(self.call(move |conn| {
            let n = conn
                .execute(
                    "DELETE FROM looks WHERE time < ?1 AND \
                     number < (SELECT look_count FROM runs WHERE runs.id = looks.run_id)",
                    params![cutoff],
                )
                .map_err(db)?;
            Ok(n as u64)
        }))
    }

    fn migration_status(&self) -> BoxFuture<'_, Result<Vec<MigrationStatus>, StoreError>> {
        Box::pin(async move {
            let applied = self.applied().await?;
            migrations::status(migrations::SQLITE, &applied)
        })
    }

    fn migrate_up(&self) -> BoxFuture<'_, Result<Vec<i64>, StoreError>> {
        Box::pin(self.run_migrations(migrations::SQLITE.to_vec(), Step::Up, false))
    }

    fn migrate_down(&self) -> BoxFuture<'_, Result<Option<i64>, StoreError>> {
        Box::pin(async move {
            let done = self
                .run_migrations(migrations::SQLITE.to_vec(), Step::Down, true)
                .await?;
            Ok(done.first().copied())
        })
    }
}
