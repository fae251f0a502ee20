SELECT offload.rewrite_step($1, $2, $3, $4) AS statement;
