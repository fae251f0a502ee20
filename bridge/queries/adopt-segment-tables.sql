-- At bridge start: after a restore from a dump, take the segment tables as they now are (new
-- oids, renumbered columns) and tell the planner their row counts again.
SELECT offload.resync_restored_segments() AS resynced, offload.restore_row_estimates() AS estimated;
