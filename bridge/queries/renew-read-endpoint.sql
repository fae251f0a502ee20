-- No row: the endpoint was forgotten meanwhile (not seen for too long), and must be recorded again.
UPDATE offload.read_endpoints SET seen_at = now() WHERE endpoint = $1 AND worker_id = $2;
