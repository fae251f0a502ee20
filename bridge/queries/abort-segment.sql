SELECT offload.abort_segment($1);
