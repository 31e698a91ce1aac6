//! The delivery worker: from the queue to the channels, with retries.
//!
//! Retry policy (the same classification as the Prometheus source, whose
//! helpers it reuses): connection errors, timeouts, HTTP 5xx and 429 are
//! retried until the channel's `attempts` are used up, waiting
//! `backoff * 2^retry` plus jitter, or the receiver's `Retry-After`, never
//! longer than `max_backoff`; any other answer (a 4xx: bad URL, revoked
//! webhook, rejected payload) is final, since sending it again cannot help.

use super::message::{slack_body, webhook_body};
use super::{DeliveryOutcome, NotificationLog, Queued};
use crate::config::notify::{Channel, ChannelKind};
use crate::source::prometheus::{backoff_delay, error_chain, parse_retry_after, snippet};
use crate::telemetry::{Delivery, Telemetry};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};

/// Takes notifications off the queue until every sender is gone, and
/// starts one delivery per wanting channel, at most
/// `max_in_flight` at once.
pub(super) async fn worker(
    mut queue: mpsc::Receiver<Queued>,
    channels: Arc<[Channel]>,
    client: reqwest::Client,
    log: Arc<dyn NotificationLog>,
    telemetry: Arc<Telemetry>,
    max_in_flight: usize,
) {
    let in_flight = Arc::new(Semaphore::new(max_in_flight));
    while let Some(queued) = queue.recv().await {
        let decision = queued.notification.decision;
        for channel in channels.iter().filter(|c| c.wants(decision)) {
            // Never closed, so acquiring only waits.
            let Ok(permit) = in_flight.clone().acquire_owned().await else {
                return;
            };
            let (channel, client, log, telemetry) = (
                channel.clone(),
                client.clone(),
                log.clone(),
                telemetry.clone(),
            );
            let notification = queued.notification.clone();
            let (queued_at, run_id) = (queued.queued_at, queued.run_id);
            tokio::spawn(async move {
                let body = match channel.kind {
                    ChannelKind::Slack => slack_body(&notification),
                    ChannelKind::Webhook => webhook_body(&notification),
                };
                let (attempts, result) = deliver(&client, &channel, &body, &telemetry).await;
                let outcome = if result.is_ok() {
                    Delivery::Sent
                } else {
                    Delivery::Failed
                };
                telemetry.notification_delivered(
                    &channel.name,
                    decision,
                    outcome,
                    queued_at.elapsed(),
                );
                let finished_at = crate::clock::now();
                log.record(&DeliveryOutcome {
                    analysis: notification.analysis.clone(),
                    run: notification.run.clone(),
                    run_id,
                    finished_at,
                    look: notification.look,
                    channel: channel.name.clone(),
                    decision,
                    attempts,
                    result,
                })
                .await;
                drop(permit);
            });
        }
    }
}

/// Why one attempt failed, and whether another may succeed.
struct Failure {
    message: String,
    retry: bool,
    retry_after: Option<Duration>,
}

/// Sends `body` to `channel` until it is accepted, fails for good or the
/// attempts are used up. Returns the attempts made and the result.
async fn deliver(
    client: &reqwest::Client,
    channel: &Channel,
    body: &serde_json::Value,
    telemetry: &Telemetry,
) -> (u32, Result<(), String>) {
    let body = serde_json::to_vec(body).expect("a JSON value always serializes");
    let mut attempt = 1;
    loop {
        let failure = match send(client, channel, body.clone()).await {
            Ok(()) => return (attempt, Ok(())),
            Err(f) => f,
        };
        if !failure.retry {
            return (attempt, Err(failure.message));
        }
        if attempt >= channel.attempts {
            return (
                attempt,
                Err(format!(
                    "{} (gave up after {attempt} attempts)",
                    failure.message
                )),
            );
        }
        let delay = match failure.retry_after {
            Some(d) => d.min(channel.max_backoff),
            None => backoff_delay(channel.backoff, channel.max_backoff, attempt - 1),
        };
        tracing::debug!(
            channel = %channel.name,
            attempt,
            error = %failure.message,
            delay_ms = delay.as_millis() as u64,
            "retrying notification"
        );
        telemetry.notification_retried(&channel.name);
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

/// One attempt.
async fn send(client: &reqwest::Client, channel: &Channel, body: Vec<u8>) -> Result<(), Failure> {
    let mut request = client
        .post(channel.url.expose())
        .timeout(channel.timeout)
        .header(CONTENT_TYPE, "application/json")
        .body(body);
    if let Some(token) = &channel.bearer_token {
        // The config checked the token's characters.
        let mut value =
            HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| Failure {
                message: "bearer token is not a valid header value".into(),
                retry: false,
                retry_after: None,
            })?;
        value.set_sensitive(true);
        request = request.header(AUTHORIZATION, value);
    }
    let response = request.send().await.map_err(transport_failure)?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let retry_after = parse_retry_after(response.headers());
    // Bounded by the attempt's deadline like the rest of the request; a
    // body that cannot be read only loses the detail.
    let text = response
        .bytes()
        .await
        .map(|b| snippet(&b))
        .unwrap_or_default();
    let retry = status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS;
    Err(Failure {
        message: format!("HTTP {status}: {text}"),
        retry,
        retry_after: retry.then_some(retry_after).flatten(),
    })
}

fn transport_failure(error: reqwest::Error) -> Failure {
    // The URL is the channel's secret: reqwest puts it in the message.
    let retry = !error.is_builder();
    let message = error_chain(&error.without_url());
    Failure {
        message,
        retry,
        retry_after: None,
    }
}
