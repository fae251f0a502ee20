-- For the pgoffload_jobs metric: every state, with zero for the empty ones, so graphs do not gap.
SELECT s.state, count(j.id) AS jobs
  FROM unnest(ARRAY['queued', 'running', 'succeeded', 'failed']) AS s(state)
  LEFT JOIN offload.jobs j ON j.state = s.state
 GROUP BY s.state;
