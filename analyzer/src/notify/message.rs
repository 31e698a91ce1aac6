//! What a notification says, and its two bodies: a Slack-compatible
//! incoming-webhook message and Verdict's generic JSON webhook body.
//!
//! The generic body is a published contract (docs/notifications.md):
//! `version` is bumped on any change that is not adding a field, so a
//! receiver can refuse what it does not understand.

use crate::engine::run::{Look, RunKey};
use serde::Serialize;
use serde_json::{json, Value};
use verdict_judges::decision::Action;
use verdict_judges::kayenta::scorer::ScoreClassification;

/// Version of the generic webhook body ([`webhook_body`]).
pub const WEBHOOK_BODY_VERSION: u32 = 1;

/// Reasons a Slack message shows; the generic body carries them all.
pub const SLACK_TOP_REASONS: usize = 5;

/// One decision of one run, as every channel reports it.
#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    pub analysis: String,
    pub run: RunKey,
    /// The look's number in the run (1-based).
    pub look: usize,
    /// When the look was taken (unix seconds).
    pub time: f64,
    /// Canary traffic weight when known (percent).
    pub weight: Option<f64>,
    pub decision: Action,
    pub score: f64,
    pub classification: ScoreClassification,
    /// Most important first.
    pub reasons: Vec<String>,
    pub metrics: Vec<MetricSummary>,
}

/// One metric's outcome in a look.
#[derive(Debug, Clone, Serialize)]
pub struct MetricSummary {
    pub name: String,
    pub group: String,
    pub judge: &'static str,
    /// Kayenta's verdict name: pass, high, low, nodata, error.
    pub classification: &'static str,
    pub critical: bool,
    pub muted: bool,
    pub enough_data: bool,
    /// Why, in words and numbers; empty for a plain pass.
    pub reason: String,
}

impl Notification {
    pub fn new(analysis: &str, run: &RunKey, look: &Look) -> Self {
        Notification {
            analysis: analysis.to_string(),
            run: run.clone(),
            look: look.number,
            time: look.time,
            weight: look.weight,
            decision: look.decision.action,
            score: look.decision.score,
            classification: look.decision.classification,
            reasons: look.decision.reasons.clone(),
            metrics: look
                .metrics
                .iter()
                .map(|m| MetricSummary {
                    name: m.name.clone(),
                    group: m.group.clone(),
                    judge: m.judge.as_str(),
                    classification: m.classification.verdict_name(),
                    critical: m.critical,
                    muted: m.muted,
                    enough_data: m.enough_data,
                    reason: m.reason.clone(),
                })
                .collect(),
        }
    }

    /// Names this decision of this look; the same on every attempt and
    /// every channel, so a receiver can drop a repeated delivery.
    pub fn id(&self) -> String {
        format!("{}/{}/{}", self.analysis, self.run, self.look)
    }

    /// The look's time in RFC 3339 (UTC, milliseconds).
    fn time_rfc3339(&self) -> Option<String> {
        let millis = (self.time * 1000.0).round();
        if !millis.is_finite() {
            return None;
        }
        chrono::DateTime::from_timestamp_millis(millis as i64)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    }
}

/// The generic webhook body, version [`WEBHOOK_BODY_VERSION`].
pub fn webhook_body(n: &Notification) -> Value {
    json!({
        "version": WEBHOOK_BODY_VERSION,
        "id": n.id(),
        "analysis": n.analysis,
        "run": {
            "key": n.run.to_string(),
            "detail": n.run,
        },
        "look": n.look,
        "time": n.time_rfc3339(),
        "weight": n.weight.filter(|w| w.is_finite()),
        "decision": n.decision.as_str(),
        "score": finite_or_null(n.score),
        "classification": n.classification,
        "reasons": n.reasons,
        "metrics": n.metrics,
    })
}

fn finite_or_null(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else {
        Value::Null
    }
}

/// Slack's limits: a header's text, a section's text (Block Kit reference).
const SLACK_HEADER_MAX: usize = 150;
const SLACK_SECTION_MAX: usize = 3000;

/// A Slack incoming-webhook message: `text` (the notification's one-line
/// fallback, shown where blocks are not) and `blocks` with the run, the
/// analysis, the decision, the score and the top reasons.
pub fn slack_body(n: &Notification) -> Value {
    let headline = format!(
        "Verdict: {} {} ({})",
        emoji(n.decision),
        n.decision.as_str(),
        n.analysis
    );
    let top: Vec<&String> = n.reasons.iter().take(SLACK_TOP_REASONS).collect();
    let mut text = format!(
        "Verdict {} for run {} (analysis {}, look {}, score {:.2})",
        n.decision.as_str(),
        n.run,
        n.analysis,
        n.look,
        n.score
    );
    if let Some(first) = top.first() {
        text.push_str(": ");
        text.push_str(first);
    }
    let mut reasons = String::from("*Reasons*");
    for r in &top {
        reasons.push_str("\n• ");
        reasons.push_str(&escape(r));
    }
    if n.reasons.len() > top.len() {
        reasons.push_str(&format!("\n…and {} more", n.reasons.len() - top.len()));
    }
    if top.is_empty() {
        reasons.push_str("\n(none given)");
    }
    let field = |title: &str, value: &str| json!({"type": "mrkdwn", "text": truncate(&format!("*{title}*\n{}", escape(value)), 2000)});
    let weight = n
        .weight
        .filter(|w| w.is_finite())
        .map_or("unknown".to_string(), |w| format!("{w}%"));
    json!({
        "text": escape(&text),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": truncate(&headline, SLACK_HEADER_MAX)}},
            {"type": "section", "fields": [
                field("Run", &n.run.to_string()),
                field("Analysis", &n.analysis),
                field("Decision", n.decision.as_str()),
                field("Score", &format!("{:.2}", n.score)),
                field("Look", &n.look.to_string()),
                field("Canary weight", &weight),
            ]},
            {"type": "section", "text": {"type": "mrkdwn", "text": truncate(&reasons, SLACK_SECTION_MAX)}},
        ],
    })
}

fn emoji(action: Action) -> &'static str {
    match action {
        Action::Abort => "🛑",
        Action::Promote => "✅",
        Action::Inconclusive => "⚠️",
        Action::Continue => "⏳",
    }
}

/// Slack's mrkdwn control characters (`&`, `<`, `>`) as entities, so a
/// reason cannot form a link or a mention.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// At most `max` characters, ending in `…` when cut.
fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max.saturating_sub(1)) {
        Some((cut, _)) if text.chars().count() > max => format!("{}…", &text[..cut]),
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_keeps_short_text_and_cuts_long_text_to_the_limit() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "ab…");
        assert_eq!(truncate("ééééé", 4).chars().count(), 4);
    }

    #[test]
    fn escape_defuses_mentions_and_links() {
        assert_eq!(escape("<!channel> a&b"), "&lt;!channel&gt; a&amp;b");
    }
}
