//! The wall clock, in the unit the engine keeps time in: unix seconds.
//!
//! Only the edges read it (an HTTP request's arrival, a migration's or a
//! notification's record, retention); the engine takes its time from the
//! request or the replay clock, so a replay closes runs at replay time.

/// Current wall-clock time in unix seconds (0 if the clock is before 1970).
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
