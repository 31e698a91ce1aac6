//! The engine's side of the run store: keeping a run in memory in step with
//! its stored copy, and committing each look before it is answered.
//!
//! The store is the source of truth; memory is a cache of it. Before a look
//! the run is synchronised ([`sync`]): a run missing from memory (a
//! restarted daemon, another replica's run) is resumed from its stored
//! looks and sequential state, and a run another replica looked at since is
//! brought forward to that replica's latest look, so the dedup window and
//! the next look number are checked against the latest *stored* look. The
//! look is then judged on a copy of the sequential state, and [`record`]
//! commits it; only a committed look (ours, or the winner's when another
//! replica recorded the same number first) changes the run in memory.

use super::run::{Look, Run};
use super::RUN_IDLE_EVICTION_SECONDS;
use crate::config::analysis::Analysis;
use crate::store::{config_hash, NewRun, Recorded, SequentialStates, Store, StoreError};
use std::sync::Arc;
use verdict_judges::decision::Decision;

/// Attempts of [`sync`]: a run closed elsewhere (or abandoned) and reopened,
/// then closed again before it could be read, is an error, not a loop.
const MAX_SYNC_ATTEMPTS: usize = 3;

/// Brings `run` up to date with the store (see the module documentation).
/// A run closed or abandoned in the store is started afresh at `now`.
pub async fn sync(
    store: &dyn Store,
    run: &mut Run,
    analysis: &Analysis,
    now: f64,
    keep_looks: usize,
) -> Result<(), StoreError> {
    for _ in 0..MAX_SYNC_ATTEMPTS {
        match run.id {
            None => {
                let new = NewRun {
                    analysis: run.analysis.clone(),
                    key: run.key.clone(),
                    config_hash: config_hash(&analysis.config),
                    verdict_version: env!("CARGO_PKG_VERSION").to_string(),
                    started_at: run.first_look,
                    window_start: run.window_start,
                    vars: run.vars.clone(),
                };
                let open = store.open_run(&new, keep_looks).await?;
                if now - open.last_seen() >= RUN_IDLE_EVICTION_SECONDS {
                    // The rollout neither finished nor looked for a day: the
                    // stored run is abandoned, as it would have been evicted
                    // from a daemon that never restarted.
                    tracing::info!(run = %run.key, analysis = %run.analysis, id = open.id, "closing abandoned stored run");
                    store
                        .close_run(&run.analysis, &run.key, "abandoned", now)
                        .await?;
                    continue;
                }
                run.id = Some(open.id);
                run.first_look = open.started_at;
                run.window_start = open.window_start;
                run.vars = open.vars;
                run.resume_looks(open.looks);
                run.sequential = open.sequential;
                run.opened = open.opened;
                return Ok(());
            }
            Some(id) => {
                let after = run.last_look().map_or(0, |l| l.number);
                let synced = store.sync_run(id, after).await?;
                if synced.closed {
                    // Closed by a post-rollout on another replica: later
                    // looks start afresh, as on the replica that closed it.
                    *run = Run::new(
                        run.key.clone(),
                        &run.analysis,
                        now,
                        analysis.config.lookback.as_secs_f64(),
                        run.vars.clone(),
                    );
                    continue;
                }
                if let Some(newer) = synced.newer {
                    run.push_look(Arc::new(newer.look));
                    run.sequential = newer.sequential;
                }
                // Another replica may have opened the traffic gate since.
                run.opened = synced.opened;
                return Ok(());
            }
        }
    }
    Err(StoreError::Backend(format!(
        "run {} kept changing while it was being opened",
        run.key
    )))
}

/// A committed look, and whether this engine's look is the one recorded.
pub struct Committed {
    pub look: Arc<Look>,
    /// False when another replica recorded this look number first and
    /// `look` is its look.
    pub ours: bool,
}

/// Commits `look` (with the sequential state after it) and applies the
/// committed look to `run`; on failure, `run` is unchanged and the look is
/// handed back.
pub async fn record(
    store: &dyn Store,
    run: &mut Run,
    look: Look,
    sequential: SequentialStates,
) -> Result<Committed, (StoreError, Look)> {
    let Some(id) = run.id else {
        let e = StoreError::Backend("the run has no store id (not synchronised)".into());
        return Err((e, look));
    };
    let look = Arc::new(look);
    let recorded = match store.record_look(id, &look, &sequential).await {
        Ok(r) => r,
        // A failed store keeps no reference, so the look is unwrapped, not copied.
        Err(e) => return Err((e, Arc::unwrap_or_clone(look))),
    };
    match recorded {
        Recorded::Inserted => {
            run.push_look(look.clone());
            run.sequential = sequential;
            Ok(Committed { look, ours: true })
        }
        Recorded::Lost(winner) => {
            let look = Arc::new(winner.look);
            run.push_look(look.clone());
            run.sequential = winner.sequential;
            Ok(Committed { look, ours: false })
        }
    }
}

/// The answer to a look that could not be committed: "cannot judge",
/// whatever the metrics said, because an unrecorded decision could be
/// contradicted by the next look on a restarted daemon or another replica.
pub fn unrecorded(look: Look, error: &StoreError) -> Look {
    Look {
        decision: Decision::inconclusive(format!(
            "the look could not be recorded, so it is not acted on: {error}"
        )),
        ..look
    }
}
