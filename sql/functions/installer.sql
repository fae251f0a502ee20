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

-- Event triggers need a superuser, or the admin role of services that allow them (RDS's
-- rds_superuser, Cloud SQL's cloudsqlsuperuser). Where the installing role may not create them
-- (the managed profile on other services, README), the install goes on without them: segments of
-- dropped tables are retired by the bridge's garbage collection instead, and schema changes are
-- followed by an explicit offload.follow_changes() (reads refuse a table changed since).
CREATE OR REPLACE FUNCTION offload.install_event_trigger(name text, event text, tags text[], handler regproc)
RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  EXECUTE format('DROP EVENT TRIGGER IF EXISTS %I', name);
  EXECUTE format('CREATE EVENT TRIGGER %I ON %I %s EXECUTE FUNCTION %s()', name, event,
                 CASE WHEN tags IS NULL THEN ''
                      ELSE format('WHEN TAG IN (%s)', (SELECT string_agg(quote_literal(t), ', ') FROM unnest(tags) t)) END,
                 handler);
  RETURN true;
EXCEPTION WHEN insufficient_privilege THEN
  RAISE NOTICE 'pg-offload: % may not create event triggers: % not installed', current_user, name;
  RETURN false;
END $$;
REVOKE EXECUTE ON FUNCTION offload.install_event_trigger(text, text, text[], regproc) FROM PUBLIC;

-- Does the database follow ALTER TABLE through pg-offload's event trigger?
CREATE OR REPLACE FUNCTION offload.follows_alters_itself() RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN EXISTS (SELECT FROM pg_event_trigger WHERE evtname = 'offload_on_alter_table' AND evtenabled <> 'D');
