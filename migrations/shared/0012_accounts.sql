-- Filers and tokens become projections of the Filer and Token events (issue 13): the event
-- log alone restores who may file, and `redtape rebuild` rebuilds these tables from it.

-- What the Filer events say of a filer beyond the profile columns of 0007.
ALTER TABLE filers ADD COLUMN kind text NOT NULL DEFAULT 'business';
ALTER TABLE filers ADD COLUMN registered_by text;
ALTER TABLE filers ADD COLUMN woman_owned boolean;
ALTER TABLE filers ADD COLUMN ethnic_minority_owned boolean;
ALTER TABLE filers ADD COLUMN updated_at text;
CREATE INDEX filers_registered_by ON filers (registered_by);

-- Bearer tokens, from TokenIssued and TokenRevoked (only the SHA-256 of a token is known).
-- `api_tokens` (0002) held the tokens issued before; each start adopts its rows into events
-- (it keeps them for replicas of the previous version during a rolling upgrade).
CREATE TABLE tokens
(
    token_id   text PRIMARY KEY,
    token_hash text NOT NULL UNIQUE,
    role       text NOT NULL,
    filer_id   text,
    provinces  text,
    label      text,
    created_at text NOT NULL,
    expires_at text,
    revoked_at text
);
CREATE INDEX tokens_filer ON tokens (filer_id);

-- When each token was last seen, written at most once a minute per token. Operational, not a
-- fact of the log: a rebuild leaves it alone.
CREATE TABLE token_usage
(
    token_id     text PRIMARY KEY,
    last_used_at text NOT NULL
);

-- The accounts projection (filers, tokens) has a checkpoint of its own: it is caught up right
-- after each account command, without waiting for a backlog of filings.
INSERT INTO projector_checkpoints (name, txid, position) VALUES ('accounts', 0, 0);
