SELECT * FROM offload.verify_segment($1);
