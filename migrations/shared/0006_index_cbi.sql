-- The Compliance Burden Index of each non-suppressed cell (methodology §5), maintained by the
-- projector per (geography, year, procedure) group whenever a cell of the group changes, so a
-- one-cell read does not recompute its whole group. Unrounded; rounding happens on output.
CREATE TABLE index_cbi
(
    geography      text             NOT NULL,
    year           integer          NOT NULL,
    procedure_code text             NOT NULL,
    province_code  text             NOT NULL,
    cbi            double precision NOT NULL,
    cbi_rank       integer          NOT NULL,
    PRIMARY KEY (geography, year, procedure_code, province_code)
);
