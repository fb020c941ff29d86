-- The accounts projection reads only Filer and Token events, in commit order: a partial index
-- finds them without scanning the filings between (a filing pays only the predicate test).
CREATE INDEX events_accounts ON events (txid, position) WHERE aggregate_type IN ('Filer', 'Token');
