//! How every reloader waits: for SIGHUP or the next poll of its files,
//! whichever comes first. The config (`cli::serve`) and the serving
//! certificate (`serve_tls`) both reload this way; each decides on a tick
//! whether its files changed.

use std::time::Duration;

/// What woke a reloader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    Hangup,
    Tick,
}

/// SIGHUP (where there is one) plus a poll interval.
pub struct ReloadTrigger {
    #[cfg(unix)]
    hangup: Option<tokio::signal::unix::Signal>,
    interval: Duration,
}

impl ReloadTrigger {
    /// Must be called inside the runtime (it registers the signal handler).
    pub fn new(interval: Duration) -> Self {
        ReloadTrigger {
            #[cfg(unix)]
            hangup: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok(),
            interval,
        }
    }

    /// Waits for SIGHUP or the end of the poll interval.
    pub async fn next(&mut self) -> Wake {
        #[cfg(unix)]
        let hangup = async {
            match self.hangup.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let hangup = std::future::pending::<()>();
        tokio::select! {
            _ = hangup => Wake::Hangup,
            _ = tokio::time::sleep(self.interval) => Wake::Tick,
        }
    }
}
