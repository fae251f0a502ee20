SELECT offload.register_read_endpoint($1, $2::jsonb, $3, make_interval(secs => $4::float8 / 1000));
