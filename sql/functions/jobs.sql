-- Jobs: offload.run() queues an offload of a table now. Rewrite jobs are queued by
-- sql/functions/rewrites.sql; the bridge claims and runs both (bridge/job-queue.ts).

-- Queues an offload job for the table now (or returns the live one) and wakes the bridges.
CREATE OR REPLACE FUNCTION offload.run(table_name regclass) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  rel regclass := offload.check_table(table_name);
  job_id bigint;
BEGIN
  IF NOT EXISTS (SELECT FROM offload.attachments WHERE table_id = rel) THEN
    RAISE EXCEPTION 'pg-offload: table % has no policy attached', rel USING ERRCODE = 'undefined_object',
      HINT = 'Attach one with offload.attach_policy().';
  END IF;
  INSERT INTO offload.jobs (table_id) VALUES (rel)
  ON CONFLICT (table_id) WHERE state IN ('queued', 'running') DO NOTHING
  RETURNING id INTO job_id;
  IF job_id IS NULL THEN
    SELECT id INTO job_id FROM offload.jobs WHERE table_id = rel AND state IN ('queued', 'running');
    UPDATE offload.jobs SET run_after = now() WHERE id = job_id AND state = 'queued';
  END IF;
  PERFORM pg_notify('offload_jobs', job_id::text);
  RETURN job_id;
END $$;
