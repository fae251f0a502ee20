-- Functions 0.1.0 had that are now part of another: each of these was the body of a function of
-- the same name without the suffix, which called it (the commit of a segment and the swap of an
-- epoch, then recording the layout; an ALTER's evaluations, after refusing a change the event
-- trigger had not seen). Their callers are replaced after the migrations (sql/functions/).
DROP FUNCTION IF EXISTS offload.commit_segment_rows(bigint, jsonb, text, bigint);
DROP FUNCTION IF EXISTS offload.swap_segment_chunks(bigint, int, jsonb, text, bigint);
DROP FUNCTION IF EXISTS offload.added_column_value_here(regclass, int2, bigint);
DROP FUNCTION IF EXISTS offload.retyped_added_value_here(regclass, regclass, text, text, regtype, int, regtype, int);
DROP FUNCTION IF EXISTS offload.check_cold_rows_here(bigint, jsonb);
