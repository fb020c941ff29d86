-- Nothing on SQLite: the daily cap is reserved by the group commit's writer on both stores
-- now, and the embedded store's one writer keeps the counts in its memory
-- (crates/store/src/limits.rs, `Tally`); the rate limit stays in the process's memory.
-- PostgreSQL's replicas take the rate limit a chunk at a time
-- (migrations/postgres/0017_limits_in_group_commit.sql).
SELECT 1;
