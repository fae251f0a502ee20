SELECT offload.gc_forget(make_interval(secs => $1::float8 / 1000), $2::bigint[]);
