-- The daily cap is now reserved in the group commit's transaction, by the writer itself
-- (crates/store/src/limits.rs), on both stores: daily_filings (0016) is unchanged here.
--
-- A replica takes a token's quota a chunk at a time: `taken` is how many requests the last
-- update took, which RETURNING cannot otherwise tell (it sees the new row only).
ALTER TABLE rate_limits ADD COLUMN taken integer NOT NULL DEFAULT 1;
