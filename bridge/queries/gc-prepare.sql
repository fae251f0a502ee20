SELECT offload.gc_prepare(make_interval(secs => $1::float8 / 1000));
