-- The release whose function definitions (sql/functions/) the database holds, and a digest of
-- their text: an installer of an older release refuses to apply its own over them, and a bridge
-- starting with the same definitions applies nothing (bridge/schema-installer.ts).
CREATE TABLE offload.schema_release (
  one              boolean PRIMARY KEY DEFAULT true CHECK (one),
  release          text NOT NULL,
  functions_digest text NOT NULL,
  installed_at     timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT ON offload.schema_release TO PUBLIC;
