DELETE FROM offload.read_endpoints WHERE endpoint = $1 AND worker_id = $2;
