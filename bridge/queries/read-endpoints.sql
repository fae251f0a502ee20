-- Every recorded read endpoint, the most recently started first.
SELECT endpoint, target FROM offload.read_endpoints ORDER BY started_at DESC, endpoint;
