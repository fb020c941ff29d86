-- When each event was committed, in Unix seconds: the projector's lag in seconds is the age of
-- the oldest event it has not applied yet. SQLite cannot add a column with a non-constant
-- default, so the commit-order trigger fills it. Existing rows that are not projected yet count
-- from the migration.
ALTER TABLE event_log ADD COLUMN recorded_at real NOT NULL DEFAULT 0;
UPDATE event_log SET recorded_at = unixepoch('subsec')
WHERE position > (SELECT position FROM projector_checkpoints WHERE name = 'observations');

DROP TRIGGER events_log;
CREATE TRIGGER events_log AFTER INSERT ON events
BEGIN
    INSERT INTO event_log (aggregate_type, aggregate_id, sequence, recorded_at)
    VALUES (NEW.aggregate_type, NEW.aggregate_id, NEW.sequence, unixepoch('subsec'));
END;
