-- The installer's guard for installers that predate schema_release (0.1.0): they apply each
-- migration whose version offload.migrations lacks, and they record it there first. A database
-- installed by a newer release lacks 0.1.0's versions 1-16 (its baseline, 17, replaces them), so
-- such an installer would apply them over newer definitions; this refuses, saying why.
CREATE OR REPLACE FUNCTION offload.refuse_older_migration() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  newest offload.migrations;
BEGIN
  SELECT * INTO newest FROM offload.migrations ORDER BY version DESC LIMIT 1;
  IF newest.version > NEW.version THEN
    RAISE EXCEPTION 'pg-offload: this database''s schema is newer than the installer (it has migration %, the installer wanted to add %)',
        newest.name, NEW.name
      USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Run the pg-offload release that installed it, or a newer one.';
  END IF;
  RETURN NEW;
END $$;
REVOKE EXECUTE ON FUNCTION offload.refuse_older_migration() FROM PUBLIC;
DROP TRIGGER IF EXISTS refuse_older_migration ON offload.migrations;
CREATE TRIGGER refuse_older_migration BEFORE INSERT ON offload.migrations
  FOR EACH ROW EXECUTE FUNCTION offload.refuse_older_migration();
