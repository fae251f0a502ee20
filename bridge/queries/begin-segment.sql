SELECT offload.begin_segment($1, $2::oid::regclass, $3, $4, $5, $6::regclass) AS id;
