-- Run by the installer before every migration, under its advisory lock: the ledger of migrations.
CREATE SCHEMA IF NOT EXISTS offload;
CREATE TABLE IF NOT EXISTS offload.migrations (
  version    int PRIMARY KEY,
  name       text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);
