-- The procedure catalogue as a read model of the Procedure aggregate's events: one row per
-- procedure, with its whole timeline of statutory terms (JSON text, the aggregate's state),
-- so "the limit in force on a date" is answered exactly as the domain answers it.
CREATE TABLE procedures
(
    code          text   PRIMARY KEY,
    name_vi       text   NOT NULL,
    name_en       text   NOT NULL,
    timeline      text   NOT NULL,
    last_sequence bigint NOT NULL
);
