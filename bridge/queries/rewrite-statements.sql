SELECT lock_sql, count_sql, copy_sql FROM offload.rewrite_statements($1, $2);
