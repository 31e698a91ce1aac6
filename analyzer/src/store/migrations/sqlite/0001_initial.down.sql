DROP TABLE notifications;
DROP TABLE flagger_events;
DROP TABLE looks;
DROP TABLE runs;
