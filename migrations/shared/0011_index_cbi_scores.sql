-- The four scaled indicators behind each stored CBI (methodology §5: s1 working days, s2 SCM
-- cost, s3 informal payments, s4 delays; 0-100, unrounded), so a ranking reads them with the
-- CBI instead of recomputing its group. A stored CBI averages at least one of them, so a row
-- with none was written before this migration: the service fills those at start
-- (Projector::fill_missing_scores).
ALTER TABLE index_cbi ADD COLUMN score_days double precision;
ALTER TABLE index_cbi ADD COLUMN score_cost double precision;
ALTER TABLE index_cbi ADD COLUMN score_informal double precision;
ALTER TABLE index_cbi ADD COLUMN score_on_time double precision;
