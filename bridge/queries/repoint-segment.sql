SELECT offload.repoint_segment($1, $2, $3) AS changed;
