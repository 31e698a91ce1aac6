-- Runs, looks, Flagger events and notifications (SQLite).
-- Times are unix seconds (REAL), as the engine keeps them.
CREATE TABLE runs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    analysis        TEXT    NOT NULL,
    run_key         TEXT    NOT NULL,
    key_json        TEXT    NOT NULL,
    controller      TEXT    NOT NULL,
    namespace       TEXT,
    name            TEXT,
    config_hash     TEXT    NOT NULL,
    verdict_version TEXT    NOT NULL,
    started_at      REAL    NOT NULL,
    window_start    REAL    NOT NULL,
    vars_json       TEXT    NOT NULL,
    ended_at        REAL,
    outcome         TEXT,
    final_decision  TEXT,
    final_score     REAL,
    look_count      INTEGER NOT NULL DEFAULT 0,
    last_look_at    REAL
);
-- One open run per (analysis, key): replicas racing to start a run meet here.
CREATE UNIQUE INDEX runs_open_key ON runs (analysis, run_key) WHERE ended_at IS NULL;
CREATE INDEX runs_started_at ON runs (started_at);

CREATE TABLE looks (
    run_id       INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    number       INTEGER NOT NULL,
    time         REAL    NOT NULL,
    window_start REAL    NOT NULL,
    window_end   REAL    NOT NULL,
    weight       REAL,
    score        REAL    NOT NULL,
    decision     TEXT    NOT NULL,
    reasons_json TEXT    NOT NULL,
    look_json    TEXT    NOT NULL,
    state_json   TEXT    NOT NULL,
    -- One look per number: replicas racing to record a look meet here.
    PRIMARY KEY (run_id, number)
);
CREATE INDEX looks_time ON looks (time);

CREATE TABLE flagger_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at  REAL NOT NULL,
    analysis     TEXT NOT NULL,
    run_key      TEXT NOT NULL,
    run_id       INTEGER,
    namespace    TEXT NOT NULL,
    name         TEXT NOT NULL,
    phase        TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    message      TEXT NOT NULL,
    payload_json TEXT NOT NULL
);
CREATE INDEX flagger_events_run ON flagger_events (run_id);

CREATE TABLE notifications (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id   INTEGER NOT NULL,
    sent_at  REAL    NOT NULL,
    channel  TEXT    NOT NULL,
    decision TEXT    NOT NULL,
    attempts INTEGER NOT NULL,
    ok       INTEGER NOT NULL,
    error    TEXT
);
CREATE INDEX notifications_run ON notifications (run_id);
