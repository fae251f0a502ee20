SELECT pg_advisory_unlock(1885826918, -2);
