-- 1 while a cell is published with bootstrap intervals older than its observations: a busy
-- cell recomputes them at most once a second, and the projector refreshes every due cell as
-- soon as it is idle (issue 10). Kept in the table so that a process that stops in between
-- leaves the next one a list of what to refresh.
ALTER TABLE index_cells ADD COLUMN intervals_due integer NOT NULL DEFAULT 0;
