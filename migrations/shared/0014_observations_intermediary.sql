-- The intermediary that filed a submission for its member (issue 13), from the filing event
-- (version 1.1): what an intermediary lists as its own (in filing order), and the moderation
-- queue's filter. Rows of earlier filings have none; a rebuild fills it for every event that
-- records one.
ALTER TABLE observations ADD COLUMN intermediary_id text;
CREATE INDEX observations_intermediary ON observations (intermediary_id, filed_at, submission_id)
    WHERE intermediary_id IS NOT NULL;
