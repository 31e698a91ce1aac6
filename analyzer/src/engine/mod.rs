//! The engine: runs, looks and the clock. The only place that calls the
//! judges.
//!
//! Every way into Verdict (a Flagger webhook, an Argo call, `verdict
//! replay`) ends in [`Engine::look`]: find or start the run, decide whether
//! this delivery is a new look or a duplicate, fetch every metric's window
//! concurrently, judge, score, decide, remember. Callers map the resulting
//! [`Look`] to their protocol; nothing here knows about HTTP.

pub mod fetch;
pub mod judge;
pub mod judgement;
pub mod persist;
pub mod run;
pub mod sequential;

use crate::config::analysis::{Analysis, BaselineWindow, StepWeights};
use crate::config::template::TemplateError;
use crate::source::{SeriesSource, SourceError, Window};
use crate::store::{memory::MemoryStore, Store};
use crate::telemetry::{StoreOperation, Telemetry};
use fetch::{fetch_arm, render};
use judge::JudgeContext;
use judgement::{judge_look, FetchedArms};
use run::{Look, LookWindow, Run, RunKey, StepOpening};
use sequential::SequentialStates;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use verdict_judges::decision::{Action, Decision};

/// A request for a look at a run.
#[derive(Debug, Clone)]
pub struct LookRequest {
    pub key: RunKey,
    pub analysis: String,
    /// Template variables: name, namespace, checksum, metadata, args.
    pub vars: BTreeMap<String, String>,
    /// The look's time (unix seconds): the wall clock when serving, the
    /// replay clock when replaying.
    pub now: f64,
    /// The canary weight, when the controller sends it (Argo's step
    /// arguments; Flagger never does).
    pub weight: Option<f64>,
    /// The step schedule sent with the request (Flagger's `stepWeights`
    /// metadata); the analysis's `steps` otherwise.
    pub steps: Option<StepWeights>,
}

/// A metric arm's data, when it was fetched and found.
fn arm(r: &Result<Option<fetch::ArmData>, fetch::FetchError>) -> Option<&fetch::ArmData> {
    r.as_ref().ok().and_then(Option::as_ref)
}

/// What is told of every look the engine records (the notifications,
/// which sit above the engine and so are reached through this trait).
/// Called on the look's path: it must not wait.
pub trait LookObserver: Send + Sync {
    /// Look `look` of run `run_id` (its store id, when recorded there) of
    /// `key` under `analysis` was recorded.
    fn look_recorded(&self, run_id: Option<i64>, analysis: &str, key: &RunKey, look: &Look);
}

/// The traffic gate's answer ([`Engine::gate`]).
#[derive(Debug, Clone)]
pub struct GateAnswer {
    pub look: Arc<Look>,
    /// What to answer: the look's decision, with the gate's reason first
    /// when it differs (a promote that must not open it again is a continue).
    pub decision: Decision,
    /// The opening, when the gate opens: the weight may go up.
    pub opened: Option<StepOpening>,
}

impl GateAnswer {
    /// Held (or refused) exactly as the look decided.
    fn as_decided(look: Arc<Look>) -> Self {
        GateAnswer {
            decision: look.decision.clone(),
            look,
            opened: None,
        }
    }
}

/// Why a look could not be taken at all (as opposed to a look whose
/// metrics failed, which is a look with an inconclusive decision).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    #[error("unknown analysis {0:?}")]
    UnknownAnalysis(String),
    #[error("metric {metric:?}: {error}")]
    BadVariable {
        metric: String,
        error: TemplateError,
    },
}

/// The analyses in force; swapped whole on reload.
pub type Analyses = BTreeMap<String, Arc<Analysis>>;

/// A run is one rollout judged by one analysis: a controller may send the
/// same rollout to several analyses (Flagger runs every `rollout` hook of a
/// canary in one tick, with the same payload), and each keeps its own looks,
/// dedup window and sequential state.
type RunSlot = (String, RunKey);

/// A run with the time of its latest delivery (for eviction).
struct RunEntry {
    run: Arc<tokio::sync::Mutex<Run>>,
    last_seen: f64,
}

/// Runs nobody asked about for this long are forgotten: a rollout that
/// neither finished (post-rollout) nor looked for a day is abandoned, and
/// keeping it would grow memory without bound.
pub const RUN_IDLE_EVICTION_SECONDS: f64 = 24.0 * 3600.0;

/// Looks read back from the store when a run is resumed (a restarted daemon,
/// another replica's run), to find where its current rollout step began. In
/// memory a run keeps only its latest look, so this bounds nothing else; a
/// step longer than this many looks is taken to begin at the oldest of them.
pub const RESUMED_LOOKS: usize = 500;

/// Runs, looks and judging over one series source.
pub struct Engine {
    analyses: RwLock<Arc<Analyses>>,
    source: Arc<dyn SeriesSource>,
    runs: Mutex<HashMap<RunSlot, RunEntry>>,
    telemetry: Arc<Telemetry>,
    /// Told of every recorded look (see [`Engine::with_notifier`]).
    notifier: Option<Arc<dyn LookObserver>>,
    /// Where every look is committed before it is answered.
    store: Arc<dyn Store>,
}

impl Engine {
    pub fn new(
        analyses: Analyses,
        source: Arc<dyn SeriesSource>,
        telemetry: Arc<Telemetry>,
    ) -> Self {
        Engine {
            analyses: RwLock::new(Arc::new(analyses)),
            source,
            runs: Mutex::new(HashMap::new()),
            telemetry,
            notifier: None,
            store: Arc::new(MemoryStore::new()),
        }
    }

    /// Announces decisions through `notifier` (in the daemon,
    /// the notifications' `Notifier`): every recorded look is offered to it,
    /// which never waits.
    pub fn with_notifier(mut self, notifier: Option<Arc<dyn LookObserver>>) -> Self {
        self.notifier = notifier;
        self
    }

    /// The same engine recording into `store` (a new engine records into
    /// memory only).
    pub fn with_store(self, store: Arc<dyn Store>) -> Self {
        Engine { store, ..self }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Counts a failed store operation.
    fn store_failed(&self, operation: StoreOperation, error: &crate::store::StoreError) {
        self.telemetry.store_failed(operation);
        tracing::error!(operation = operation.as_str(), "run store: {error}");
    }

    /// Replaces the analyses (config reload). Runs keep their state; their
    /// next look uses the new definition of their analysis.
    pub fn set_analyses(&self, analyses: Analyses) {
        *self.analyses.write().expect("analyses lock") = Arc::new(analyses);
    }

    pub fn analyses(&self) -> Arc<Analyses> {
        self.analyses.read().expect("analyses lock").clone()
    }

    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.telemetry
    }

    fn analysis(&self, name: &str) -> Result<Arc<Analysis>, EngineError> {
        self.analyses()
            .get(name)
            .cloned()
            .ok_or_else(|| EngineError::UnknownAnalysis(name.to_string()))
    }

    /// The run of `key` under `analysis` in memory, if it is there.
    fn run_slot(&self, analysis: &str, key: &RunKey) -> Option<Arc<tokio::sync::Mutex<Run>>> {
        let slot = (analysis.to_string(), key.clone());
        let runs = self.runs.lock().expect("runs lock");
        runs.get(&slot).map(|e| e.run.clone())
    }

    /// A snapshot of the run of `key` under `analysis`, if it exists.
    pub async fn run(&self, analysis: &str, key: &RunKey) -> Option<Run> {
        let run = self.run_slot(analysis, key)?;
        let run = run.lock().await;
        Some(run.clone())
    }

    /// Marks a run finished (Flagger post-rollout) at `now` (unix seconds,
    /// the request's or the replay clock's: the engine reads no clock), in
    /// memory and in the store (where another replica or an earlier process
    /// may hold the run); later looks start afresh.
    pub async fn close(&self, analysis: &str, key: &RunKey, outcome: &str, now: f64) -> bool {
        let slot = (analysis.to_string(), key.clone());
        let run = self.runs.lock().expect("runs lock").remove(&slot);
        let in_memory = match run.map(|e| e.run) {
            Some(run) => {
                run.lock().await.closed = Some(outcome.to_string());
                self.telemetry.forget_run(analysis, &key.to_string());
                true
            }
            None => false,
        };
        let stored = match self.store.close_run(analysis, key, outcome, now).await {
            Ok(id) => id.is_some(),
            Err(e) => {
                self.store_failed(StoreOperation::CloseRun, &e);
                false
            }
        };
        in_memory || stored
    }

    /// Forgets runs idle for longer than [`RUN_IDLE_EVICTION_SECONDS`]; runs
    /// only on the creation of a new run, so a steady set of runs costs nothing.
    fn evict_idle(&self, runs: &mut HashMap<RunSlot, RunEntry>, now: f64) {
        runs.retain(|(analysis, key), entry| {
            let keep = now - entry.last_seen < RUN_IDLE_EVICTION_SECONDS;
            if !keep {
                tracing::info!(run = %key, analysis = %analysis, "forgetting idle run");
                self.telemetry.forget_run(analysis, &key.to_string());
            }
            keep
        });
    }

    /// Number of runs in memory.
    pub fn open_runs(&self) -> usize {
        self.runs.lock().expect("runs lock").len()
    }

    /// Takes a look, or returns the run's last look when this delivery is a
    /// duplicate (within the analysis's dedup window).
    pub async fn look(&self, req: LookRequest) -> Result<Arc<Look>, EngineError> {
        let analysis = self.analysis(&req.analysis)?;
        self.look_with(analysis, req, None).await
    }

    /// Checks that every query of `analysis` (registered or not) renders
    /// with `vars`.
    pub fn check_analysis_vars(
        analysis: &Analysis,
        vars: &BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        for metric in &analysis.metrics {
            for queries in [&metric.canary, &metric.baseline] {
                render(queries, vars).map_err(|error| EngineError::BadVariable {
                    metric: metric.config.name.clone(),
                    error,
                })?;
            }
        }
        Ok(())
    }

    /// A look with an analysis given by the caller rather than looked up by
    /// name (a Kayenta execution's canary config, posted or inline).
    /// `window_start` fixes the start of a new run's window (a judgement
    /// over an explicit `[start, now]`) instead of `now − lookback`.
    pub async fn look_with(
        &self,
        analysis: Arc<Analysis>,
        req: LookRequest,
        window_start: Option<f64>,
    ) -> Result<Arc<Look>, EngineError> {
        // Counted from the request, so time spent waiting for the run's
        // lock is part of it: a slow backend cannot hold a run beyond it.
        let deadline = tokio::time::Instant::now() + Self::fetch_budget();
        Self::check_analysis_vars(&analysis, &req.vars)?;
        let run = self.run_for(&analysis, &req, window_start);
        // One look at a time per run: concurrent duplicates wait here and
        // then see the look the first one took.
        let mut run = run.lock().await;
        if let Err(unsynced) = self.sync(&mut run, &analysis, &req).await {
            return Ok(unsynced);
        }
        let weight = Self::weight_of(&run, &analysis, &req);
        if let Some(last) = self.duplicate_of(&run, &analysis, &req, weight) {
            return Ok(last);
        }
        let started = Instant::now();
        let (window, baseline_window) = Self::windows(&run, &analysis, req.now);
        let fetched = self
            .fetch_all(&analysis, &req.vars, &window, &baseline_window, deadline)
            .await;
        let judged_at = Instant::now();
        let context = JudgeContext::new(&analysis, weight)
            .at(req.now)
            .observing(fetched.iter().map(|(c, b)| (arm(c), arm(b))));
        // Judged on a copy: the run's state changes only with a committed look.
        let mut sequential = run.sequential.clone();
        let policy = judge::policy(
            &analysis.config,
            run.min_duration_met(&analysis.config, req.now),
            run.step_clock(weight, req.now),
        );
        let judgement = judge_look(&analysis, &context, fetched, &mut sequential, &policy);
        self.telemetry.judged(judged_at.elapsed());
        let step = run.step();
        let look = Look {
            number: run.last_look().map_or(1, |l| l.number + 1),
            time: req.now,
            window: LookWindow::of(&window),
            baseline: analysis.config.baseline_window.describe().to_string(),
            weight,
            step: (step > 0).then_some(step),
            metrics: judgement.verdicts,
            decision: judgement.decision,
        };
        Ok(self.commit(&mut run, &req, look, sequential, started).await)
    }

    /// The run of `req` under its analysis, created (as of `req.now`) when
    /// there is none in memory; idle runs are evicted on creation.
    fn run_for(
        &self,
        analysis: &Analysis,
        req: &LookRequest,
        window_start: Option<f64>,
    ) -> Arc<tokio::sync::Mutex<Run>> {
        let mut runs = self.runs.lock().expect("runs lock");
        let slot = (req.analysis.clone(), req.key.clone());
        if !runs.contains_key(&slot) {
            self.evict_idle(&mut runs, req.now);
        }
        let lookback = window_start.map_or(analysis.config.lookback.as_secs_f64(), |start| {
            req.now - start
        });
        let entry = runs.entry(slot).or_insert_with(|| RunEntry {
            run: Arc::new(tokio::sync::Mutex::new(Run::new(
                req.key.clone(),
                &req.analysis,
                req.now,
                lookback,
                req.vars.clone(),
            ))),
            last_seen: req.now,
        });
        entry.last_seen = entry.last_seen.max(req.now);
        entry.run.clone()
    }

    /// Brings `run` up to date with the store ([`persist::sync`]). When the
    /// store cannot be read, the answer instead: an unrecorded look that
    /// cannot judge.
    async fn sync(
        &self,
        run: &mut Run,
        analysis: &Analysis,
        req: &LookRequest,
    ) -> Result<(), Arc<Look>> {
        let started = Instant::now();
        let synced =
            persist::sync(self.store.as_ref(), run, analysis, req.now, RESUMED_LOOKS).await;
        self.telemetry
            .store_took(StoreOperation::SyncRun, started.elapsed());
        let Err(e) = synced else { return Ok(()) };
        self.store_failed(StoreOperation::SyncRun, &e);
        let cfg = &analysis.config;
        let look = Look {
            number: run.last_look().map_or(1, |l| l.number + 1),
            time: req.now,
            window: LookWindow {
                start: run.window_start,
                end: req.now,
                step_seconds: cfg.step.as_secs_f64(),
            },
            baseline: cfg.baseline_window.describe().to_string(),
            weight: req.weight,
            step: None,
            metrics: Vec::new(),
            decision: Decision::inconclusive("the run store could not be read"),
        };
        Err(Arc::new(persist::unrecorded(look, &e)))
    }

    /// The look's canary weight: the one sent, or the schedule's weight of
    /// the step the gate has opened (none before the first opening or past
    /// the last step).
    fn weight_of(run: &Run, analysis: &Analysis, req: &LookRequest) -> Option<f64> {
        req.weight
            .or_else(|| Self::scheduled_weight(analysis, req.steps.as_ref(), run.step()))
    }

    /// The weight of `step` in the request's schedule, or else the
    /// analysis's; none before the first step, past the last, or without one.
    fn scheduled_weight(
        analysis: &Analysis,
        sent: Option<&StepWeights>,
        step: usize,
    ) -> Option<f64> {
        sent.or(analysis.config.steps.as_ref())
            .and_then(|s| s.weight_of(step))
    }

    /// The run's latest look when this delivery is a duplicate of it: within
    /// the dedup window and at the same weight. A delivery at another weight
    /// is a new step's first look (Argo measures a new step's run at once).
    fn duplicate_of(
        &self,
        run: &Run,
        analysis: &Analysis,
        req: &LookRequest,
        weight: Option<f64>,
    ) -> Option<Arc<Look>> {
        let last = run.last_look()?;
        let duplicate = req.now - last.time < analysis.config.dedup_window.as_secs_f64()
            && req.now >= last.time
            && weight == last.weight;
        if duplicate {
            self.telemetry.duplicate_delivery();
        }
        duplicate.then(|| last.clone())
    }

    /// The canary's window (the run's, to `now`) and the baseline's.
    fn windows(run: &Run, analysis: &Analysis, now: f64) -> (Window, Window) {
        let step = analysis.config.step.0;
        let window = Window {
            start: run.window_start,
            end: now,
            step,
        };
        let baseline = match analysis.config.baseline_window {
            BaselineWindow::Same => window,
            // The primary before any traffic moved: a window as long as the
            // canary's, ending where the run began.
            BaselineWindow::BeforeRollout => Window {
                start: run.window_start - (now - run.window_start),
                end: run.window_start,
                step,
            },
        };
        (window, baseline)
    }

    /// Fetches every metric's arms concurrently; a metric still unanswered
    /// at `deadline` is a timeout error (its look is judged without it).
    async fn fetch_all(
        &self,
        analysis: &Analysis,
        vars: &BTreeMap<String, String>,
        window: &Window,
        baseline_window: &Window,
        deadline: tokio::time::Instant,
    ) -> Vec<FetchedArms> {
        let tasks = analysis.metrics.iter().map(|metric| async move {
            let t = Instant::now();
            let source = self.source.as_ref();
            let both = async {
                futures_util::join!(
                    fetch_arm(source, metric, &metric.canary, vars, window),
                    fetch_arm(source, metric, &metric.baseline, vars, baseline_window)
                )
            };
            let (canary, baseline) = match tokio::time::timeout_at(deadline, both).await {
                Ok(arms) => arms,
                Err(_) => {
                    let late = || Err(SourceError::Timeout(Self::fetch_budget()).into());
                    (late(), late())
                }
            };
            for error in [&canary, &baseline]
                .into_iter()
                .filter_map(|r| r.as_ref().err())
            {
                self.telemetry.fetch_error(error.kind());
            }
            self.telemetry.observe_query(
                &metric.config.name,
                t.elapsed(),
                canary.is_err() || baseline.is_err(),
            );
            (canary, baseline)
        });
        futures_util::future::join_all(tasks).await
    }

    /// Commits `look` to the store and the run, then counts, logs and
    /// announces it; the look the run now has is the answer (another
    /// replica's, when it recorded this look number first; "cannot judge"
    /// when it could not be recorded).
    async fn commit(
        &self,
        run: &mut Run,
        req: &LookRequest,
        look: Look,
        sequential: SequentialStates,
        started: Instant,
    ) -> Arc<Look> {
        let store_started = Instant::now();
        let committed = persist::record(self.store.as_ref(), run, look, sequential).await;
        self.telemetry
            .store_took(StoreOperation::RecordLook, store_started.elapsed());
        let look = match committed {
            Ok(c) if c.ours => c.look,
            Ok(c) => {
                // Another replica recorded this look first: its answer.
                self.telemetry.duplicate_delivery();
                return c.look;
            }
            Err((error, look)) => {
                self.store_failed(StoreOperation::RecordLook, &error);
                return Arc::new(persist::unrecorded(look, &error));
            }
        };
        let key = req.key.to_string();
        self.telemetry
            .record_look(&req.analysis, &key, &look.decision, started.elapsed());
        tracing::info!(
            run = %req.key,
            analysis = %req.analysis,
            look = look.number,
            score = look.decision.score,
            decision = ?look.decision.action,
            reasons = ?look.decision.reasons,
            "decision"
        );
        if let Some(notifier) = &self.notifier {
            notifier.look_recorded(run.id, &req.analysis, &req.key, &look);
        }
        look
    }

    /// Flagger's traffic gate (`confirm-traffic-increase`, called before
    /// every weight increase): takes the tick's look (or finds it taken) and
    /// answers whether the weight may go up now.
    ///
    /// The gate opens on a promote, and before the first increase while the
    /// canary has had no traffic (it cannot get any before the gate opens).
    /// An opening begins the next step: it is recorded in the run store
    /// before it is answered (an opening that cannot be recorded is not
    /// given), and one look opens the gate at most once, so a retried call
    /// never skips a step.
    pub async fn gate(&self, req: LookRequest) -> Result<GateAnswer, EngineError> {
        let (analysis, key, now) = (req.analysis.clone(), req.key.clone(), req.now);
        let steps = req.steps.clone();
        let look = self.look(req).await?;
        let held = |look: Arc<Look>, action: Action, why: String| {
            let mut decision = look.decision.clone();
            decision.action = action;
            decision.reasons.insert(0, why);
            GateAnswer {
                look,
                decision,
                opened: None,
            }
        };
        let Some(run) = self.run_slot(&analysis, &key) else {
            return Ok(GateAnswer::as_decided(look));
        };
        let mut run = run.lock().await;
        let first_increase =
            look.decision.action == Action::Continue && look.canary_idle() && run.step() == 0;
        if look.decision.action != Action::Promote && !first_increase {
            return Ok(GateAnswer::as_decided(look));
        }
        if run.last_look().map(|l| l.number) != Some(look.number) {
            let why = "a newer look was taken meanwhile; the next call decides".to_string();
            return Ok(held(look, Action::Continue, why));
        }
        if let Some(opened) = run.opened.filter(|o| o.after_look >= look.number) {
            let why = format!(
                "the gate already opened after look {} (step {} began); the step's own looks decide",
                opened.after_look, opened.step
            );
            return Ok(held(look, Action::Continue, why));
        }
        let opening = StepOpening {
            step: run.step() + 1,
            at: now,
            after_look: look.number,
        };
        let recorded = match run.id {
            Some(id) => self.store.open_step(id, &opening).await,
            None => Err(crate::store::StoreError::Backend(
                "the run has no store id (not synchronised)".into(),
            )),
        };
        match recorded {
            Ok(true) => {
                run.opened = Some(opening);
                self.telemetry.gate_opened();
                let weight = Self::scheduled_weight(
                    self.analysis(&analysis)?.as_ref(),
                    steps.as_ref(),
                    opening.step,
                );
                tracing::info!(run = %key, analysis = %analysis, step = opening.step, ?weight, "traffic gate opened");
                let mut decision = look.decision.clone();
                decision.reasons.insert(
                    0,
                    match (first_increase, weight) {
                        (true, _) => {
                            "the canary has had no traffic yet (the first increase)".into()
                        }
                        (false, Some(w)) => format!("step {} (weight {w}) begins", opening.step),
                        (false, None) => format!("step {} begins", opening.step),
                    },
                );
                Ok(GateAnswer {
                    look,
                    decision,
                    opened: Some(opening),
                })
            }
            Ok(false) => {
                let why = "another replica opened the gate for this step first".to_string();
                Ok(held(look, Action::Continue, why))
            }
            Err(e) => {
                self.store_failed(StoreOperation::OpenStep, &e);
                let why = format!(
                    "the opening of the gate could not be recorded, so it is not given: {e}"
                );
                Ok(held(look, Action::Inconclusive, why))
            }
        }
    }

    /// How long a handler waits for a look before answering "cannot judge".
    /// Under 5 s so that a webhook with Flagger's common `timeout: 5s` gets
    /// an answer (docs/controllers.md F-14), leaving room for the HTTP round trip.
    pub fn answer_budget() -> Duration {
        Duration::from_millis(4500)
    }

    /// How long a look waits for its metrics (from the request, lock wait
    /// included) before judging what it has: a metric still unanswered is
    /// an error "timed out", so a slow backend yields a look with reasons,
    /// inside [`Engine::answer_budget`], rather than no look. Half a second
    /// is left for judging and the answer.
    pub fn fetch_budget() -> Duration {
        Self::answer_budget() - Duration::from_millis(500)
    }
}

#[cfg(test)]
mod tests;
