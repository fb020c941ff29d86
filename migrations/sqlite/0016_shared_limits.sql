-- Nothing on SQLite: the embedded store is served by one process (Db::lock_exclusive), which
-- keeps the rate limit and the daily cap in memory (crates/api/src/limits.rs). PostgreSQL
-- holds them in tables that its replicas share (migrations/postgres/0016_shared_limits.sql).
SELECT 1;
