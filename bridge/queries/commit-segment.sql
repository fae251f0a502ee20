SELECT offload.commit_segment($1, $2, $3, $4)::text AS segment_table;
