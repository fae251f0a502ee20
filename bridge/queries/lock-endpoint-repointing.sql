-- Session-level: held while a starting bridge records its endpoint and repoints segment tables.
SELECT pg_advisory_lock(1885826918, -2);
