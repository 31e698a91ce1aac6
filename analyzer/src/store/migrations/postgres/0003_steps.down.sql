ALTER TABLE runs DROP COLUMN step_after_look;
ALTER TABLE runs DROP COLUMN step_opened_at;
ALTER TABLE runs DROP COLUMN step;
