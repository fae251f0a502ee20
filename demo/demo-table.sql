-- One million events over the last year: bigint id, timestamptz, int, 32-character text.
CREATE TABLE events (
  id         bigint PRIMARY KEY,
  created_at timestamptz NOT NULL,
  device     int NOT NULL,
  amount     numeric(12, 2),
  note       text
);
INSERT INTO events
SELECT i, now() - (1000000 - i) * interval '31.5 seconds', i % 5000, (i % 100000) / 100.0, md5(i::text)
  FROM generate_series(1, 1000000) AS i;
CREATE INDEX events_created_at ON events (created_at);
