SELECT offload.swap_segment_epoch($1, $2, $3, $4, $5);
