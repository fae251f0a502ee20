-- Extends worker $2's hold on job $1; no row back means the job is no longer ours.
UPDATE offload.jobs SET heartbeat_at = now()
 WHERE id = $1 AND locked_by = $2 AND state = 'running'
RETURNING id;
