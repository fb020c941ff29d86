-- Reform-office workflow (issue 4). The same text for PostgreSQL and SQLite.

-- An officer token may be limited to some provinces: their vn-34 codes, comma-separated and
-- sorted; NULL means every province. Business and admin tokens have NULL.
ALTER TABLE api_tokens ADD COLUMN provinces text;

-- Government responses as a read model of `ResponsePosted` events (one row per event), for
-- the published response statistics. The text is never stored here: it is read from the
-- events by the filer alone.
CREATE TABLE responses
(
    submission_id text   NOT NULL,
    sequence      bigint NOT NULL,
    agency        text   NOT NULL,
    status        text   NOT NULL,
    posted_at     text   NOT NULL,
    PRIMARY KEY (submission_id, sequence)
);

-- The moderation queue reads submissions of one status, oldest first.
CREATE INDEX observations_queue ON observations (status, filed_at, submission_id);
-- The daily cap counts a filer's submissions since midnight in Vietnam.
DROP INDEX observations_filer;
CREATE INDEX observations_filer ON observations (filer_id, filed_at);

-- How many of a cell's observations an officer verified. Verification did not exist before
-- this migration, so 0 is right for every existing cell.
ALTER TABLE index_cells ADD COLUMN n_verified integer NOT NULL DEFAULT 0;
