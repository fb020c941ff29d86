-- Abuse control shared by every replica on this database (crates/store/src/limits.rs), so
-- adding replicas does not multiply the limits.
--
-- The per-token rate limit (GCRA): the theoretical arrival time of each token's next
-- request. Unlogged: it is written on every request that carries a token and needs no WAL;
-- a crash empties it, which forgives at most a minute's quota.
CREATE UNLOGGED TABLE rate_limits (
    key text PRIMARY KEY,
    tat timestamptz NOT NULL
);

-- The per-filer daily cap: submissions reserved per filer per Vietnam day. Unlogged too, so
-- a reservation is not a second durable commit per filing: after a crash the table is
-- empty, and a filer's first filing of the day seeds its row again from the submissions
-- stored since midnight.
CREATE UNLOGGED TABLE daily_filings (
    filer_id text NOT NULL,
    day date NOT NULL,
    filed integer NOT NULL CHECK (filed >= 0),
    PRIMARY KEY (filer_id, day)
);
