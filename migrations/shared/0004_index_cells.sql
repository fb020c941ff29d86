-- Index cells (methodology §3): one row per (geography, year, procedure, province) with at
-- least one included observation, maintained by the projector in the same transaction as
-- the observations it summarises. Statistics are unrounded; rounding happens on output.
-- `suppressed` is 0/1 (portable across both stores).
CREATE TABLE index_cells
(
    geography             text             NOT NULL,
    year                  integer          NOT NULL,
    procedure_code        text             NOT NULL,
    province_code         text             NOT NULL,
    n                     integer          NOT NULL,
    n_timings             integer          NOT NULL,
    n_pending             integer          NOT NULL,
    n_complaints          integer          NOT NULL,
    suppressed            integer          NOT NULL,
    median_days           double precision,
    p90_days              double precision,
    median_days_ci_low    double precision,
    median_days_ci_high   double precision,
    median_cost           double precision,
    median_cost_ci_low    double precision,
    median_cost_ci_high   double precision,
    median_visits         double precision,
    on_time_rate          double precision,
    informal_payment_rate double precision,
    methodology_version   text             NOT NULL,
    PRIMARY KEY (geography, year, procedure_code, province_code)
);
CREATE INDEX index_cells_by_procedure ON index_cells (procedure_code, geography, year);
