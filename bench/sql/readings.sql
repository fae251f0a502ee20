-- The time-series table: {rows} sensor readings spread evenly over the last 365 days, mixed types
-- with the repetition real telemetry has (a few metrics, thousands of devices, short decimals).
CREATE TABLE readings (
  id          bigint PRIMARY KEY,
  recorded_at timestamptz NOT NULL,
  device_id   integer NOT NULL,
  metric      text NOT NULL,
  value       double precision,
  reading     numeric(12, 3),
  status      smallint NOT NULL,
  tags        jsonb,
  note        text
);

INSERT INTO readings
SELECT i,
       now() - interval '365 days' * (1 - i::float8 / {rows}),
       (i::bigint * 7919) % 5000,
       (ARRAY['cpu', 'mem', 'disk', 'net', 'temp'])[1 + i % 5],
       round((20 + 15 * sin(i / 977.0) + (i % 13) * 0.25)::numeric, 2)::float8,
       round((i % 100000) / 7.0, 3),
       (i % 4)::smallint,
       CASE WHEN i % 10 = 0 THEN NULL
            ELSE jsonb_build_object('rack', i % 40, 'zone', 'z' || i % 3, 'fw', '1.' || i % 7) END,
       CASE i % 5 WHEN 0 THEN NULL WHEN 1 THEN 'ok' WHEN 2 THEN 'threshold exceeded on device ' || (i::bigint * 7919) % 5000
            ELSE 'sample ' || i % 1000 END
  FROM generate_series(1, {rows}) AS i;

CREATE INDEX readings_recorded_at ON readings (recorded_at);
