-- The optional profile a business gives when it registers (size class: micro, small, medium,
-- large; VSIC sector section: A-U), published only in the coarsened open microdata.
ALTER TABLE filers ADD COLUMN size_class text;
ALTER TABLE filers ADD COLUMN sector_section text;
