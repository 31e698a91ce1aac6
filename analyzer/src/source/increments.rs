//! Counter and histogram increments from raw series (in progress).
