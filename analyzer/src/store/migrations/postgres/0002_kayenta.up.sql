-- The Kayenta API's records (PostgreSQL): canary configs posted to /canaryConfig
-- and executions started with POST /canary. Times are unix milliseconds, as
-- Kayenta reports them. The JSON columns hold the API's own shapes.
CREATE TABLE kayenta_configs (
    id             TEXT    PRIMARY KEY,
    -- Names are unique, so Argo Rollouts' look-up by name finds one config.
    name           TEXT    NOT NULL UNIQUE,
    updated_millis BIGINT  NOT NULL,
    config_json    TEXT    NOT NULL
);

CREATE TABLE kayenta_executions (
    id           TEXT    PRIMARY KEY,
    config_id    TEXT,
    application  TEXT,
    -- running | succeeded | terminal
    status       TEXT    NOT NULL,
    build_millis BIGINT  NOT NULL,
    end_millis   BIGINT,
    config_json  TEXT    NOT NULL,
    request_json TEXT    NOT NULL,
    params_json  TEXT    NOT NULL,
    outcome_json TEXT    NOT NULL
);
CREATE INDEX kayenta_executions_listing ON kayenta_executions (application, build_millis);
CREATE INDEX kayenta_executions_status ON kayenta_executions (status);
