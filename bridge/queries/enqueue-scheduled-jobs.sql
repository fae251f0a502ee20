-- Queues an offload for every attached table with something due and no job in the last $1 ms.
INSERT INTO offload.jobs (table_id, requested_by)
SELECT a.table_id, 'pg-offload schedule'
  FROM offload.attachments a
 WHERE NOT EXISTS (
         SELECT FROM offload.jobs j
          WHERE j.table_id = a.table_id
            AND (j.state IN ('queued', 'running')
                 OR j.created_at > now() - make_interval(secs => $1::float8 / 1000)))
   AND offload.is_due(a.table_id)
ON CONFLICT DO NOTHING
RETURNING id;
