-- Bounded segment tables (README, "Plan time and merged segments"): a plain table read through
-- postgres_fdw keeps at most a policy's segment_tables foreign tables, however much of it is
-- cold. Once it has more, the bridge merges neighbouring segments into one: the chunks stay the
-- objects they are, moved in the catalog to the merged segment, whose foreign table covers the
-- key range of all of them. The planner then checks a bounded number of children on every query.

ALTER TABLE offload.policies
  ADD COLUMN segment_tables int CONSTRAINT policies_segment_tables_check CHECK (segment_tables >= 1);
COMMENT ON COLUMN offload.policies.segment_tables IS
  'pg-offload: at most this many segment tables per plain table read through postgres_fdw (older segments are merged once there are more); NULL: 4';

ALTER TABLE offload.segments ADD COLUMN merged_into bigint;
COMMENT ON COLUMN offload.segments.merged_into IS
  'pg-offload: the segment this one was merged into (it is then retired, and its current chunks belong to that segment)';

DROP FUNCTION IF EXISTS offload.define_policy(text, text, interval, bigint, interval, bigint, text[], bigint, bigint, int, text);
