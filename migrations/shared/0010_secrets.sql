-- Secrets the service generates for itself and must keep across restarts and rebuilds: not
-- facts about the world, so not events, and never dropped by a rebuild. `microdata-row-key`
-- keys the HMAC that orders open microdata rows (issue 11): without it a row key could be
-- computed from a submission id, linking a published row to its filer.
CREATE TABLE service_secrets (
    name text PRIMARY KEY,
    value text NOT NULL
);
