-- Jobs: what an attempt is, and progress across attempts.
--
-- attempts: attempts begun that count toward the bridge's limit (PGOFFLOAD_MAX_ATTEMPTS), the
--   running one included; never more than the limit.
-- retries: runs cut short by a conflict with other sessions (serialization failure, deadlock, a
--   lock not granted in time) or by the loss of the bridge running them (its lease taken over),
--   run again without using an attempt. Bounded (PGOFFLOAD_MAX_CONFLICT_RETRIES): past the
--   bound such a failure counts as an attempt like any other, so no job loops forever.
-- kept_*: the work of the job that no later attempt redoes (segments committed, their rows and
--   bytes), as of the last progress write; base_*: that work as of the start of the running
--   attempt. segments_done, rows_done and bytes_done show base_* plus the running attempt's own
--   work, so progress counts every attempt's committed work once.
ALTER TABLE offload.jobs
  ADD COLUMN retries int NOT NULL DEFAULT 0,
  ADD COLUMN base_segments int NOT NULL DEFAULT 0,
  ADD COLUMN base_rows bigint NOT NULL DEFAULT 0,
  ADD COLUMN base_bytes bigint NOT NULL DEFAULT 0,
  ADD COLUMN kept_segments int NOT NULL DEFAULT 0,
  ADD COLUMN kept_rows bigint NOT NULL DEFAULT 0,
  ADD COLUMN kept_bytes bigint NOT NULL DEFAULT 0;

COMMENT ON COLUMN offload.jobs.attempts IS
  'Attempts used of the bridge''s limit (PGOFFLOAD_MAX_ATTEMPTS), the running one included; never more than the limit.';
COMMENT ON COLUMN offload.jobs.retries IS
  'Runs retried without using an attempt: cut short by a serialization failure, deadlock or lock timeout, or by the loss of their bridge.';
