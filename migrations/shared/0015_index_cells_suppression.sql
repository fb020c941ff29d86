-- Methodology 1.1 (METHODOLOGY.md §4): why a cell is suppressed, `primary` (n < k) or
-- `secondary` (published, it would let a suppressed sibling or total be recovered by
-- subtraction); null when published. `suppressed` stays 1 for both.
-- index_cells also holds, since 1.1, the national cells (province_code `all`, §3) and the
-- breakdown cells (province_code `dimension=group`, e.g. `woman_owned=yes`, §7): the same
-- spelling as their bootstrap seed keys. Cells stored by 1.0 have neither; the service
-- recomputes every cell at its first start on 1.1 (see `Projector::upgrade_methodology`).
ALTER TABLE index_cells ADD COLUMN suppression text;
