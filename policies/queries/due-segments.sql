SELECT range_lo, range_hi FROM offload.due_segments($1::oid::regclass, $2);
