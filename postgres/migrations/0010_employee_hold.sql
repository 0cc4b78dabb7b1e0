-- An investigator's suspension is a hold the HR feed cannot lift: ingest
-- keeps status 'suspended' while held is 1 (unless HR says the person has
-- left), and only a reinstatement through custos clears it.
ALTER TABLE employees ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
