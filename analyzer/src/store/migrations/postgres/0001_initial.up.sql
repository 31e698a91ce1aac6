-- Runs, looks, Flagger events and notifications (PostgreSQL).
-- Times are unix seconds (DOUBLE PRECISION), as the engine keeps them.
CREATE TABLE runs (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    analysis        TEXT    NOT NULL,
    run_key         TEXT    NOT NULL,
    key_json        TEXT    NOT NULL,
    controller      TEXT    NOT NULL,
    namespace       TEXT,
    name            TEXT,
    config_hash     TEXT    NOT NULL,
    verdict_version TEXT    NOT NULL,
    started_at      DOUBLE PRECISION    NOT NULL,
    window_start    DOUBLE PRECISION    NOT NULL,
    vars_json       TEXT    NOT NULL,
    ended_at        DOUBLE PRECISION,
    outcome         TEXT,
    final_decision  TEXT,
    final_score     DOUBLE PRECISION,
    look_count      BIGINT  NOT NULL DEFAULT 0,
    last_look_at    DOUBLE PRECISION
);
-- One open run per (analysis, key): replicas racing to start a run meet here.
CREATE UNIQUE INDEX runs_open_key ON runs (analysis, run_key) WHERE ended_at IS NULL;
CREATE INDEX runs_started_at ON runs (started_at);

CREATE TABLE looks (
    run_id       BIGINT  NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    number       BIGINT  NOT NULL,
    time         DOUBLE PRECISION    NOT NULL,
    window_start DOUBLE PRECISION    NOT NULL,
    window_end   DOUBLE PRECISION    NOT NULL,
    weight       DOUBLE PRECISION,
    score        DOUBLE PRECISION    NOT NULL,
    decision     TEXT    NOT NULL,
    reasons_json TEXT    NOT NULL,
    look_json    TEXT    NOT NULL,
    state_json   TEXT    NOT NULL,
    -- One look per number: replicas racing to record a look meet here.
    PRIMARY KEY (run_id, number)
);
CREATE INDEX looks_time ON looks (time);

CREATE TABLE flagger_events (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at  DOUBLE PRECISION NOT NULL,
    analysis     TEXT NOT NULL,
    run_key      TEXT NOT NULL,
    run_id       BIGINT,
    namespace    TEXT NOT NULL,
    name         TEXT NOT NULL,
    phase        TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    message      TEXT NOT NULL,
    payload_json TEXT NOT NULL
);
CREATE INDEX flagger_events_run ON flagger_events (run_id);

CREATE TABLE notifications (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id   BIGINT  NOT NULL,
    sent_at  DOUBLE PRECISION    NOT NULL,
    channel  TEXT    NOT NULL,
    decision TEXT    NOT NULL,
    attempts BIGINT  NOT NULL,
    ok       BOOLEAN NOT NULL,
    error    TEXT
);
CREATE INDEX notifications_run ON notifications (run_id);
