-- Partitions offloaded by 0.1.0 are foreign tables attached to their table directly, under a new
-- name, so tools that drop partitions by their name (pg_partman's retention runs DROP TABLE) fail
-- on them. This release offloads a partition into a partitioned table with the partition's own
-- name, bounds and owner whose one partition is the foreign table (offload.create_segment_table);
-- here the earlier ones take that shape too. A name taken since by another table leaves that
-- segment as it was (load back and truncate handle both shapes), with a notice.
--
-- The installed release's event triggers would check these ALTERs with that release's functions,
-- which migrations may have changed: they are off until the end, and the function files that
-- follow re-create them anyway.
DO $$
DECLARE
  trigger_name name;
BEGIN
  FOR trigger_name IN SELECT e.evtname FROM pg_event_trigger e JOIN pg_proc p ON p.oid = e.evtfoid
                       WHERE p.pronamespace = 'offload'::regnamespace AND e.evtenabled <> 'D' LOOP
    EXECUTE format('ALTER EVENT TRIGGER %I DISABLE', trigger_name);
  END LOOP;
END $$;

DO $$
DECLARE
  s record;
  parts text[];
  part_name text;
  nsp text;
  holder regclass;
BEGIN
  FOR s IN
    SELECT sg.id, sg.table_id, sg.segment_table, sg.partition_name, c.relname, c.relowner, c.relnamespace,
           pg_get_expr(c.relpartbound, c.oid) AS bound
      FROM offload.segments sg
      JOIN pg_class c ON c.oid = sg.segment_table AND c.relispartition
      JOIN pg_inherits i ON i.inhrelid = sg.segment_table AND i.inhparent = sg.table_id
     WHERE sg.state = 'committed' AND sg.partition_name IS NOT NULL
     ORDER BY sg.id
  LOOP
    parts := parse_ident(s.partition_name);
    part_name := parts[array_length(parts, 1)];
    nsp := CASE WHEN array_length(parts, 1) > 1 THEN parts[1]
                ELSE s.relnamespace::regnamespace::text END;
    IF to_regclass(format('%I.%I', nsp, part_name)) IS NOT NULL THEN
      RAISE NOTICE 'pg-offload: segment % stays a foreign partition of %: the name %.% is taken',
        s.id, s.table_id, nsp, part_name;
      CONTINUE;
    END IF;
    EXECUTE format('ALTER TABLE %s DETACH PARTITION %s', s.table_id, s.segment_table);
    EXECUTE format('CREATE TABLE %I.%I PARTITION OF %s %s PARTITION BY %s',
                   nsp, part_name, s.table_id, s.bound, pg_get_partkeydef(s.table_id));
    holder := format('%I.%I', nsp, part_name)::regclass;
    EXECUTE format('ALTER TABLE %s OWNER TO %s', holder, s.relowner::regrole);
    EXECUTE format('ALTER TABLE %s ATTACH PARTITION %s %s', holder, s.segment_table, s.bound);
    EXECUTE format('COMMENT ON TABLE %s IS %L', holder,
      format('pg-offload: partition %s of %s, offloaded as segment %s (foreign table %s.%I)',
             s.partition_name, s.table_id, s.id, s.relnamespace::regnamespace, s.relname));
  END LOOP;
END $$;

DO $$
DECLARE
  trigger_name name;
BEGIN
  FOR trigger_name IN SELECT e.evtname FROM pg_event_trigger e JOIN pg_proc p ON p.oid = e.evtfoid
                       WHERE p.pronamespace = 'offload'::regnamespace AND e.evtenabled = 'D' LOOP
    EXECUTE format('ALTER EVENT TRIGGER %I ENABLE', trigger_name);
  END LOOP;
END $$;
