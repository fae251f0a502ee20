SELECT segment_id, state, collectable, live_keys
  FROM offload.gc_segments(make_interval(secs => $1::float8 / 1000));
