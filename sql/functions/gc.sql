-- Garbage collection, catalog side: which objects of the store are garbage, and forgetting them
-- once the bridge has deleted them (bridge/garbage-collector.ts does the store side).

-- Garbage collection, catalog side. Abandoned attempts (pending segments whose job is no longer
-- running, or whose bridge stopped heartbeating) become aborted; vanished segments retired.
CREATE OR REPLACE FUNCTION offload.gc_prepare(lease interval) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM offload.retire_vanished_segments();
  UPDATE offload.segments s SET state = 'aborted', retired_at = now()
   WHERE s.state = 'pending'
     AND NOT EXISTS (SELECT FROM offload.jobs j WHERE j.id = s.job_id AND j.state = 'running'
                        AND j.heartbeat_at > now() - lease);
  UPDATE offload.segments SET retired_at = coalesce(retired_at, now()) WHERE state = 'aborted';
END $$;
REVOKE EXECUTE ON FUNCTION offload.gc_prepare(lease interval) FROM PUBLIC;

-- The postgres_fdw servers of dropped tables go, with their user mappings.
CREATE OR REPLACE FUNCTION offload.forget_remote_readers() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  r offload.remote_readers%ROWTYPE;
BEGIN
  FOR r IN SELECT * FROM offload.remote_readers rr
            WHERE NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = rr.table_id) LOOP
    EXECUTE format('DROP SERVER IF EXISTS %I CASCADE', r.server);
    DELETE FROM offload.remote_readers WHERE server = r.server;
  END LOOP;
END $$;
REVOKE EXECUTE ON FUNCTION offload.forget_remote_readers() FROM PUBLIC;

-- Epochs whose chunks garbage collection has forgotten need no layout either.
CREATE OR REPLACE FUNCTION offload.gc_forget(grace interval, collected_segments bigint[]) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
  DELETE FROM offload.chunks c USING offload.segments s
   WHERE s.id = c.segment_id AND s.state = 'committed'
     AND c.retired_at IS NOT NULL AND c.retired_at <= now() - grace;
  DELETE FROM offload.segments
   WHERE id = ANY (collected_segments) AND state IN ('aborted', 'retired')
     AND retired_at <= now() - grace;
  DELETE FROM offload.segment_layouts l USING offload.segments s
   WHERE s.id = l.segment_id AND l.epoch <> s.epoch
     AND NOT EXISTS (SELECT FROM offload.chunks c WHERE c.segment_id = l.segment_id AND c.epoch = l.epoch);
  SELECT offload.forget_remote_readers();
$$;
REVOKE EXECUTE ON FUNCTION offload.gc_forget(grace interval, collected_segments bigint[]) FROM PUBLIC;

-- What the store may hold, per segment: which keys are live, and whether the rest of the
-- segment's objects may go (no live job on its table, past the grace period).
CREATE OR REPLACE FUNCTION offload.gc_segments(grace interval)
RETURNS TABLE (segment_id bigint, state text, collectable boolean, live_keys text[])
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT s.id, s.state,
         CASE WHEN s.state IN ('aborted', 'retired') THEN s.retired_at <= now() - grace
              WHEN s.state = 'pending' THEN false
              -- A committed segment's unreferenced objects may be a rewrite still uploading.
              ELSE NOT EXISTS (SELECT FROM offload.jobs j WHERE j.table_id = s.table_id
                                  AND j.state IN ('queued', 'running')) END,
         CASE WHEN s.state = 'committed'
              THEN ARRAY(SELECT c.object_key FROM offload.chunks c WHERE c.segment_id = s.id
                          AND (c.retired_at IS NULL OR c.retired_at > now() - grace))
              WHEN s.state = 'pending' OR s.retired_at > now() - grace
              THEN ARRAY(SELECT c.object_key FROM offload.chunks c WHERE c.segment_id = s.id)
              ELSE '{}'::text[] END
    FROM offload.segments s;
$$;
REVOKE EXECUTE ON FUNCTION offload.gc_segments(grace interval) FROM PUBLIC;
