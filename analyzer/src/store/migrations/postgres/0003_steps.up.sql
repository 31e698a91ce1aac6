-- The rollout step of each run as the traffic gate counts it (Flagger's
-- confirm-traffic-increase answered 200): Flagger never sends the weight,
-- so Verdict counts the steps itself, and a restarted daemon or another
-- replica must count the same ones. Step 0: the gate never opened.
ALTER TABLE runs ADD COLUMN step BIGINT NOT NULL DEFAULT 0;
-- When the latest opening happened (unix seconds) and after which look.
ALTER TABLE runs ADD COLUMN step_opened_at DOUBLE PRECISION;
ALTER TABLE runs ADD COLUMN step_after_look BIGINT;
