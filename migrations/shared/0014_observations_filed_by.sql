-- Who a submission was filed by, from its filing event (version 1.1, issue 13): the
-- intermediary that filed it for its member, and the filer's profile when it filed
-- (METHODOLOGY.md §7). Rows of 1.0 filings have neither (the profile is unknown); a rebuild
-- fills them for every event that records them. Later profile changes never touch a row.
-- The intermediary is what an intermediary lists as its own (in filing order) and the
-- moderation queue's filter.
ALTER TABLE observations ADD COLUMN intermediary_id text;
ALTER TABLE observations ADD COLUMN size_class text;
ALTER TABLE observations ADD COLUMN sector_section text;
ALTER TABLE observations ADD COLUMN woman_owned boolean;
ALTER TABLE observations ADD COLUMN ethnic_minority_owned boolean;
CREATE INDEX observations_intermediary ON observations (intermediary_id, filed_at, submission_id)
    WHERE intermediary_id IS NOT NULL;
