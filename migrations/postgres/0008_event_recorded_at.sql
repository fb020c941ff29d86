-- When each event was committed (its transaction's start, which is when a group commit began):
-- the projector's lag in seconds is the age of the oldest event it has not applied yet.
-- `now()` is stable, so existing rows take the migration's time without a table rewrite.
ALTER TABLE events ADD COLUMN recorded_at timestamptz NOT NULL DEFAULT now();
