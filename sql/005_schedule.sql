-- The schedule queues a job only for tables with something due, checked cheaply: one row below
-- the cutoff (an index on the key makes it a single probe), or one due partition.
CREATE FUNCTION offload.is_due(rel regclass) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  a offload.attachments%ROWTYPE;
  cutoff text;
  result boolean;
BEGIN
  SELECT * INTO a FROM offload.attachments WHERE table_id = rel;
  IF NOT FOUND OR NOT EXISTS (SELECT FROM pg_class WHERE oid = rel) THEN
    RETURN false;
  END IF;
  IF a.partitioned THEN
    RETURN EXISTS (SELECT FROM offload.due_partitions(rel));
  END IF;
  cutoff := offload.hot_cutoff(rel);
  IF cutoff IS NULL THEN
    RETURN false;
  END IF;
  EXECUTE format('SELECT EXISTS (SELECT FROM ONLY %s WHERE %I < %L::%s)', rel, a.key_column, cutoff, a.key_type)
    INTO result;
  RETURN result;
END $$;

REVOKE EXECUTE ON FUNCTION offload.is_due(regclass) FROM PUBLIC;
