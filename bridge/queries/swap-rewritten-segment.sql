SELECT offload.swap_rewritten_segment($1, $2, $3, $4, $5, $6, $7, $8);
