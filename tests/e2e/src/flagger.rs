//! A rollout controller that plays Flagger's part, as
//! `docs/controllers.md` §1 describes it (progressive canary
//! strategy, `spec.analysis.stepWeights`), against real webhook receivers.
//!
//! One [`Rollout`] is one Canary object's analysis of one revision. Every
//! `interval` it runs one reconcile tick, in Flagger's order:
//!
//! 1. `Initialized`/`Waiting`: the `confirm-rollout` gate. Passing scales
//!    the canary up (phase `Progressing`); failing waits (phase `Waiting`),
//!    never counted as a failed check.
//! 2. `Promoting`: all traffic to the (updated) primary, phase `Finalising`;
//!    `Finalising`: phase `Succeeded`, `post-rollout` hooks.
//! 3. `Progressing`/`WaitingPromotion`: the `rollback` hooks first (any
//!    answer ≤ 202 rolls back at once); then the threshold check
//!    (`failed_checks >= threshold` rolls back); then `pre-rollout` on the
//!    first tick (weight 0) or the `rollout` hooks, each failure adding one
//!    failed check and ending the tick; then the strategy: the next step
//!    weight, or at the last step the `confirm-promotion` gate (failing:
//!    `WaitingPromotion`, not counted; passing: `Promoting`).
//! 4. A rollback routes all traffic to the primary, sets `Failed` and calls
//!    the `post-rollout` hooks.
//!
//! Every Kubernetes event Flagger would record goes to the `event` hooks
//! (fire and forget, `metadata` with `eventMessage`, `eventType` and a
//! millisecond `timestamp` that the hook's own metadata cannot override).
//!
//! Webhooks are `POST` with Flagger's JSON payload (`name`, `namespace`,
//! `phase`, `checksum`, `metadata` when non-empty). An answer passes iff its
//! status is at most 202; a timeout (the hook's `timeout`, per attempt) or a
//! connection error fails. Hooks of one type run in spec order; for gates
//! and checks the first failure short-circuits.
//!
//! Like Flagger, it sends a webhook's `metadata` verbatim (static, never
//! the weight) and calls the `confirm-traffic-increase` gates before every
//! weight increase, the first one from weight 0 included, in the same tick
//! as `pre-rollout` (docs/controllers.md §1.5); a failing gate ends the
//! tick with the weight unchanged and counts no failed check.
//!
//! Departures from Flagger, none of which changes what Verdict sees:
//! * no retries (Flagger's default `retries: 0`), no mirroring, A/B or
//!   blue/green, no readiness checks of workloads;
//! * `max_ticks` bounds the rollout, since a test must end (Flagger waits
//!   at a failing gate forever).
//!
//! Traffic is the shared [`CanaryWeight`] that the load generator obeys.

use crate::load::CanaryWeight;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Flagger's webhook types (the CRD enum) that this driver calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookType {
    ConfirmRollout,
    PreRollout,
    Rollout,
    ConfirmTrafficIncrease,
    ConfirmPromotion,
    PostRollout,
    Rollback,
    Event,
}

impl HookType {
    pub fn as_str(self) -> &'static str {
        match self {
            HookType::ConfirmRollout => "confirm-rollout",
            HookType::PreRollout => "pre-rollout",
            HookType::Rollout => "rollout",
            HookType::ConfirmTrafficIncrease => "confirm-traffic-increase",
            HookType::ConfirmPromotion => "confirm-promotion",
            HookType::PostRollout => "post-rollout",
            HookType::Rollback => "rollback",
            HookType::Event => "event",
        }
    }
}

/// Flagger's canary phases (`status.go`) that this driver goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Initialized,
    Waiting,
    Progressing,
    WaitingPromotion,
    Promoting,
    Finalising,
    Succeeded,
    Failed,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Initialized => "Initialized",
            Phase::Waiting => "Waiting",
            Phase::Progressing => "Progressing",
            Phase::WaitingPromotion => "WaitingPromotion",
            Phase::Promoting => "Promoting",
            Phase::Finalising => "Finalising",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
        }
    }
}

/// One entry of `spec.analysis.webhooks`.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub name: String,
    pub hook: HookType,
    pub url: String,
    /// Per attempt; Flagger's default is 10 s.
    pub timeout: Duration,
    pub metadata: BTreeMap<String, String>,
}

/// The parts of a Canary object the driver needs.
#[derive(Debug, Clone)]
pub struct Canary {
    pub name: String,
    pub namespace: String,
    /// The revision's checksum, constant for the whole analysis.
    pub checksum: String,
    pub interval: Duration,
    /// Failed checks before a rollback.
    pub threshold: u32,
    /// `stepWeights`; the last one is the max weight.
    pub step_weights: Vec<u32>,
    pub webhooks: Vec<Webhook>,
    /// Ticks after which the driver gives up (the test's bound, not Flagger's).
    pub max_ticks: u32,
}

impl Canary {
    /// The Canary of a Flagger template (`templates/flagger/*.yaml`) as a
    /// user deploys it: its `stepWeights`, `threshold` and webhooks (types,
    /// timeouts, metadata verbatim), with Verdict's in-cluster address
    /// `http://verdict.verdict.svc:8080` replaced by `verdict` and the
    /// analysis named in each URL by `analysis` (a user's copy judged by
    /// another analysis). Name, namespace, checksum and interval are the
    /// test's (the interval is the one field a test must shorten).
    pub fn from_template(
        text: &str,
        verdict: &str,
        analysis: &str,
        identity: (&str, &str, &str),
        interval: Duration,
        max_ticks: u32,
    ) -> Result<Canary, String> {
        let doc: serde_json::Value =
            serde_yaml::from_str(text).map_err(|e| format!("Canary template YAML: {e}"))?;
        let spec = doc
            .pointer("/spec/analysis")
            .ok_or("the template has no spec.analysis")?;
        let step_weights = spec["stepWeights"]
            .as_array()
            .ok_or("spec.analysis.stepWeights is not a list")?
            .iter()
            .map(|w| {
                w.as_u64()
                    .map(|w| w as u32)
                    .ok_or("a step weight is not a number")
            })
            .collect::<Result<Vec<u32>, _>>()?;
        let threshold = spec["threshold"]
            .as_u64()
            .ok_or("no spec.analysis.threshold")? as u32;
        let mut webhooks = Vec::new();
        for hook in spec["webhooks"]
            .as_array()
            .ok_or("no spec.analysis.webhooks")?
        {
            let field = |k: &str| {
                hook[k]
                    .as_str()
                    .ok_or(format!("webhook without {k}: {hook}"))
            };
            let kind = field("type")?;
            let hook_type = HOOK_TYPES
                .iter()
                .copied()
                .find(|t| t.as_str() == kind)
                .ok_or(format!("unknown webhook type {kind}"))?;
            let url = field("url")?;
            let path = url
                .strip_prefix("http://verdict.verdict.svc:8080/v1/flagger/")
                .ok_or(format!("webhook URL {url} is not Verdict's"))?;
            let (_, hook_path) = path
                .split_once('/')
                .ok_or(format!("webhook URL {url} names no hook"))?;
            let timeout = crate::argo::parse_go_duration(field("timeout")?)
                .map_err(|e| format!("webhook timeout: {e}"))?;
            let metadata = match hook.get("metadata") {
                None => BTreeMap::new(),
                Some(m) => serde_json::from_value(m.clone())
                    .map_err(|e| format!("webhook metadata must be strings: {e}"))?,
            };
            webhooks.push(Webhook {
                name: field("name")?.to_string(),
                hook: hook_type,
                url: format!("{verdict}/v1/flagger/{analysis}/{hook_path}"),
                timeout,
                metadata,
            });
        }
        let (name, namespace, checksum) = identity;
        Ok(Canary {
            name: name.into(),
            namespace: namespace.into(),
            checksum: checksum.into(),
            interval,
            threshold,
            step_weights,
            webhooks,
            max_ticks,
        })
    }
}

/// Every webhook type, in the CRD's order.
const HOOK_TYPES: [HookType; 8] = [
    HookType::ConfirmRollout,
    HookType::PreRollout,
    HookType::Rollout,
    HookType::ConfirmTrafficIncrease,
    HookType::ConfirmPromotion,
    HookType::PostRollout,
    HookType::Rollback,
    HookType::Event,
];

/// One webhook call and its answer.
#[derive(Debug, Clone)]
pub struct HookCall {
    pub hook: HookType,
    pub webhook: String,
    /// The HTTP status, `None` on a timeout or connection error.
    pub status: Option<u16>,
    /// The answer's first line, or the error.
    pub detail: String,
    pub took: Duration,
}

impl HookCall {
    /// Flagger's rule: a status of at most 202 passes.
    pub fn passed(&self) -> bool {
        self.status.is_some_and(|s| s <= 202)
    }
}

/// One reconcile tick.
#[derive(Debug, Clone)]
pub struct Tick {
    pub number: u32,
    /// Unix seconds at the start of the tick.
    pub at: f64,
    /// Phase and canary weight at the start of the tick.
    pub phase: Phase,
    pub weight: u32,
    pub calls: Vec<HookCall>,
    /// What the controller did, in words.
    pub outcome: String,
    pub failed_checks: u32,
}

/// Why a rollout ended in `Failed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollbackCause {
    /// A `rollback` webhook answered ≤ 202.
    RollbackWebhook,
    /// `failed_checks` reached `threshold`.
    Threshold,
}

/// The whole rollout, for assertions and the CI log.
#[derive(Debug, Clone)]
pub struct Report {
    pub canary: String,
    pub phase: Phase,
    pub ticks: Vec<Tick>,
    /// `(unix seconds, weight)` each time traffic moved, from 0 at the start.
    pub weights: Vec<(f64, u32)>,
    /// The tick that rolled back, and why.
    pub rollback: Option<(u32, RollbackCause)>,
    /// Deliveries to the `event` hooks: message and answer.
    pub events: Vec<(String, HookCall)>,
}

impl Report {
    /// The canary weight in force at unix time `t`.
    pub fn weight_at(&self, t: f64) -> u32 {
        self.weights
            .iter()
            .take_while(|(at, _)| *at <= t)
            .last()
            .map_or(0, |(_, w)| *w)
    }

    /// The tick of `number`.
    pub fn tick(&self, number: u32) -> Option<&Tick> {
        self.ticks.iter().find(|t| t.number == number)
    }

    /// A readable timeline, one line per tick, times relative to the first.
    pub fn timeline(&self) -> String {
        let start = self.ticks.first().map_or(0.0, |t| t.at);
        let mut out = format!(
            "rollout of {}: {}\n  tick      t  phase             weight  fails  webhooks -> outcome\n",
            self.canary,
            self.phase.as_str()
        );
        for t in &self.ticks {
            let calls: Vec<String> = t
                .calls
                .iter()
                .map(|c| {
                    let status = c
                        .status
                        .map_or("timeout/error".to_string(), |s| s.to_string());
                    let verdict = c.detail.split(':').next().unwrap_or("");
                    format!(
                        "{} {status} ({verdict}, {} ms)",
                        c.hook.as_str(),
                        c.took.as_millis()
                    )
                })
                .collect();
            out.push_str(&format!(
                "  {:>4} {:>6.1}s  {:<16}  {:>5}%  {:>5}  {} -> {}\n",
                t.number,
                t.at - start,
                t.phase.as_str(),
                t.weight,
                t.failed_checks,
                calls.join(", "),
                t.outcome
            ));
        }
        out
    }
}

/// A Canary's rollout in progress.
pub struct Rollout {
    canary: Canary,
    traffic: Arc<CanaryWeight>,
    client: reqwest::Client,
    phase: Phase,
    weight: u32,
    failed_checks: u32,
    weights: Vec<(f64, u32)>,
    rollback: Option<(u32, RollbackCause)>,
    events: Vec<tokio::task::JoinHandle<(String, HookCall)>>,
}

/// Whether a tick ended the rollout.
enum Next {
    Continue,
    Done,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Rollout {
    /// A new revision of `canary` detected, phase `Initialized`, weight 0.
    pub fn new(canary: Canary, traffic: Arc<CanaryWeight>) -> Result<Self, reqwest::Error> {
        traffic.set(0);
        verdict::tls::install_crypto_provider();
        Ok(Rollout {
            canary,
            traffic,
            client: reqwest::Client::builder().no_proxy().build()?,
            phase: Phase::Initialized,
            weight: 0,
            failed_checks: 0,
            weights: vec![(unix_now(), 0)],
            rollback: None,
            events: Vec::new(),
        })
    }

    /// Runs ticks every `interval` (a slow tick delays the next, as a
    /// controller's work queue does) until `Succeeded`, `Failed` or
    /// `max_ticks`.
    pub async fn run(mut self) -> Report {
        let mut ticker = tokio::time::interval(self.canary.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks = Vec::new();
        for number in 0..self.canary.max_ticks {
            ticker.tick().await;
            let mut tick = Tick {
                number,
                at: unix_now(),
                phase: self.phase,
                weight: self.weight,
                calls: Vec::new(),
                outcome: String::new(),
                failed_checks: 0,
            };
            let next = self.advance(&mut tick).await;
            tick.failed_checks = self.failed_checks;
            ticks.push(tick);
            if matches!(next, Next::Done) {
                break;
            }
        }
        let mut events = Vec::new();
        for handle in self.events.drain(..) {
            if let Ok(delivery) = handle.await {
                events.push(delivery);
            }
        }
        Report {
            canary: format!("{}.{}", self.canary.name, self.canary.namespace),
            phase: self.phase,
            ticks,
            weights: self.weights,
            rollback: self.rollback,
            events,
        }
    }

    /// One reconcile tick (module doc, steps 1-4).
    async fn advance(&mut self, tick: &mut Tick) -> Next {
        let target = format!("{}.{}", self.canary.name, self.canary.namespace);
        match self.phase {
            Phase::Succeeded | Phase::Failed => return Next::Done,
            Phase::Initialized | Phase::Waiting => {
                if self.gate(HookType::ConfirmRollout, tick).await {
                    self.phase = Phase::Progressing;
                    self.finish_tick(
                        tick,
                        "Normal",
                        format!("New revision detected! Scaling up {target}"),
                    );
                } else {
                    self.phase = Phase::Waiting;
                    self.finish_tick(
                        tick,
                        "Warning",
                        format!("Halt {target} advancement waiting for approval confirm-rollout"),
                    );
                }
                return Next::Continue;
            }
            Phase::Promoting => {
                self.set_weight(0);
                self.phase = Phase::Finalising;
                self.finish_tick(
                    tick,
                    "Normal",
                    format!("Routing all traffic to primary {target}"),
                );
                return Next::Continue;
            }
            Phase::Finalising => {
                self.phase = Phase::Succeeded;
                self.finish_tick(
                    tick,
                    "Normal",
                    format!("Promotion completed! Scaling down {target}"),
                );
                self.fire_all(HookType::PostRollout, tick).await;
                return Next::Done;
            }
            Phase::Progressing | Phase::WaitingPromotion => {}
        }
        if self.any_passes(HookType::Rollback, tick).await {
            self.roll_back(
                tick,
                RollbackCause::RollbackWebhook,
                format!("Rolling back {target} manual webhook invoked"),
            )
            .await;
            return Next::Done;
        }
        if self.failed_checks >= self.canary.threshold {
            let text = format!(
                "Rolling back {target} failed checks threshold reached {}",
                self.failed_checks
            );
            self.roll_back(tick, RollbackCause::Threshold, text).await;
            return Next::Done;
        }
        let check = if self.weight == 0 {
            HookType::PreRollout
        } else {
            HookType::Rollout
        };
        if check == HookType::PreRollout {
            self.event("Normal", format!("Starting canary analysis for {target}"));
        }
        if !self.gate(check, tick).await {
            self.failed_checks += 1;
            let why = tick
                .calls
                .last()
                .map_or(String::new(), |c| c.detail.clone());
            self.finish_tick(
                tick,
                "Warning",
                format!(
                    "Halt {target} advancement {} check failed {why}",
                    check.as_str()
                ),
            );
            return Next::Continue;
        }
        let max = self.canary.step_weights.last().copied().unwrap_or(100);
        if self.weight < max {
            if !self.gate(HookType::ConfirmTrafficIncrease, tick).await {
                self.finish_tick(
                    tick,
                    "Warning",
                    format!("Halt {target} advancement waiting for traffic increase approval"),
                );
                return Next::Continue;
            }
            let next = self
                .canary
                .step_weights
                .iter()
                .copied()
                .find(|w| *w > self.weight)
                .unwrap_or(max);
            self.set_weight(next);
            self.finish_tick(
                tick,
                "Normal",
                format!("Advance {target} canary weight {next}"),
            );
            return Next::Continue;
        }
        if self.gate(HookType::ConfirmPromotion, tick).await {
            self.phase = Phase::Promoting;
            self.finish_tick(
                tick,
                "Normal",
                format!(
                    "Copying {target} template spec to {}-primary.{}",
                    self.canary.name, self.canary.namespace
                ),
            );
        } else {
            self.phase = Phase::WaitingPromotion;
            self.finish_tick(
                tick,
                "Warning",
                format!("Halt {target} advancement waiting for promotion approval"),
            );
        }
        Next::Continue
    }

    fn set_weight(&mut self, weight: u32) {
        self.weight = weight;
        self.traffic.set(weight);
        self.weights.push((unix_now(), weight));
    }

    /// Records the tick's outcome and sends it as an event.
    fn finish_tick(&mut self, tick: &mut Tick, event_type: &str, message: String) {
        tick.outcome = message.clone();
        self.event(event_type, message);
    }

    async fn roll_back(&mut self, tick: &mut Tick, cause: RollbackCause, message: String) {
        self.set_weight(0);
        self.phase = Phase::Failed;
        self.rollback = Some((tick.number, cause));
        self.finish_tick(tick, "Warning", message);
        self.event(
            "Warning",
            format!(
                "Canary failed! Scaling down {}.{}",
                self.canary.name, self.canary.namespace
            ),
        );
        self.fire_all(HookType::PostRollout, tick).await;
    }

    fn hooks(&self, hook: HookType) -> Vec<Webhook> {
        self.canary
            .webhooks
            .iter()
            .filter(|w| w.hook == hook)
            .cloned()
            .collect()
    }

    /// Gates and checks: every hook must pass, in order; the first failure
    /// short-circuits. No hooks of the type: passes.
    async fn gate(&self, hook: HookType, tick: &mut Tick) -> bool {
        for w in self.hooks(hook) {
            let call = self.request(&w, BTreeMap::new()).await;
            let passed = call.passed();
            tick.calls.push(call);
            if !passed {
                return false;
            }
        }
        true
    }

    /// Rollback hooks: the first that passes rolls back.
    async fn any_passes(&self, hook: HookType, tick: &mut Tick) -> bool {
        for w in self.hooks(hook) {
            let call = self.request(&w, BTreeMap::new()).await;
            let passed = call.passed();
            tick.calls.push(call);
            if passed {
                return true;
            }
        }
        false
    }

    /// Fire-and-forget hooks (post-rollout): every one is called, answers
    /// are only recorded.
    async fn fire_all(&self, hook: HookType, tick: &mut Tick) {
        for w in self.hooks(hook) {
            let call = self.request(&w, BTreeMap::new()).await;
            tick.calls.push(call);
        }
    }

    /// Sends an event to every `event` hook without waiting for it.
    fn event(&mut self, event_type: &str, message: String) {
        let timestamp = format!("{}", (unix_now() * 1000.0) as u64);
        for w in self.hooks(HookType::Event) {
            // Flagger's three keys win over the hook's own metadata.
            let flagger = BTreeMap::from([
                ("eventMessage".to_string(), message.clone()),
                ("eventType".to_string(), event_type.to_string()),
                ("timestamp".to_string(), timestamp.clone()),
            ]);
            let request = self.request(&w, flagger);
            let message = message.clone();
            self.events
                .push(tokio::spawn(async move { (message, request.await) }));
        }
    }

    /// The delivery of one webhook, as a future independent of `self`.
    fn request(
        &self,
        webhook: &Webhook,
        extra: BTreeMap<String, String>,
    ) -> impl std::future::Future<Output = HookCall> + Send + 'static {
        let mut metadata = webhook.metadata.clone();
        metadata.extend(extra);
        let mut payload = Map::new();
        payload.insert("name".into(), json!(self.canary.name));
        payload.insert("namespace".into(), json!(self.canary.namespace));
        payload.insert("phase".into(), json!(self.phase.as_str()));
        payload.insert("checksum".into(), json!(self.canary.checksum));
        if !metadata.is_empty() {
            payload.insert("metadata".into(), json!(metadata));
        }
        let request = self
            .client
            .post(&webhook.url)
            .timeout(webhook.timeout)
            .json(&Value::Object(payload));
        let (hook, name) = (webhook.hook, webhook.name.clone());
        async move {
            let started = Instant::now();
            let answer = match request.send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    match r.text().await {
                        Ok(body) => (Some(status), body.lines().next().unwrap_or("").to_string()),
                        Err(e) => (None, format!("reading the answer: {e}")),
                    }
                }
                Err(e) if e.is_timeout() => (None, "timed out".to_string()),
                Err(e) => (None, e.to_string()),
            };
            HookCall {
                hook,
                webhook: name,
                status: answer.0,
                detail: answer.1,
                took: started.elapsed(),
            }
        }
    }
}
