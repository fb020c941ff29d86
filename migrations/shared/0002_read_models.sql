-- Read models and operational tables. The same text is used for PostgreSQL and SQLite:
-- portable column types only, ids as text, money as bigint VND.

-- Where each projector stands in the event log: (txid, position) on PostgreSQL, (0, position)
-- on SQLite. Updated in the same transaction as the read models it covers (exactly once).
CREATE TABLE projector_checkpoints
(
    name     text   PRIMARY KEY,
    txid     bigint NOT NULL,
    position bigint NOT NULL
);
INSERT INTO projector_checkpoints (name, txid, position) VALUES ('observations', 0, 0);

-- One row per submission: its current values and status (methodology §1).
CREATE TABLE observations
(
    submission_id       text             PRIMARY KEY,
    kind                text             NOT NULL,
    status              text             NOT NULL,
    filer_id            text             NOT NULL,
    procedure_code      text             NOT NULL,
    geography           text             NOT NULL,
    province_code       text             NOT NULL,
    province_vn34       text             NOT NULL,
    year                integer          NOT NULL,
    submitted_on        date,
    completed_on        date,
    experienced_on      date,
    outcome             text,
    channel             text,
    categories          text,
    official_fees       bigint,
    unofficial_payments bigint,
    external_services   bigint,
    staff_hours         double precision,
    visits              integer,
    amendments          integer          NOT NULL,
    filed_at            text             NOT NULL,
    updated_at          text             NOT NULL,
    last_sequence       bigint           NOT NULL
);
CREATE INDEX observations_cell ON observations (year, procedure_code, province_vn34);
CREATE INDEX observations_filer ON observations (filer_id);

-- Pseudonymous filers (business accounts).
CREATE TABLE filers
(
    filer_id   text PRIMARY KEY,
    label      text,
    created_at text NOT NULL
);

-- Bearer tokens: only the SHA-256 of the token is kept.
CREATE TABLE api_tokens
(
    token_hash text PRIMARY KEY,
    token_id   text NOT NULL UNIQUE,
    role       text NOT NULL CHECK (role IN ('business', 'officer', 'admin')),
    filer_id   text REFERENCES filers (filer_id),
    label      text,
    created_at text NOT NULL,
    revoked_at text
);

-- Idempotency keys (IETF draft "The Idempotency-Key HTTP Header Field"): the first response
-- to (filer, key) is stored and replayed; `resource_id` is fixed at claim time so a retry after
-- a crash reuses the same submission id instead of filing twice.
CREATE TABLE idempotency_keys
(
    principal       text    NOT NULL,
    idempotency_key text    NOT NULL,
    request_hash    text    NOT NULL,
    resource_id     text    NOT NULL,
    state           text    NOT NULL CHECK (state IN ('pending', 'done')),
    status_code     integer,
    location        text,
    body            text,
    created_at      text    NOT NULL,
    locked_until    bigint  NOT NULL,
    PRIMARY KEY (principal, idempotency_key)
);
