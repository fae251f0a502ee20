SELECT chunk_bytes, compression_level FROM offload.write_settings($1::oid::regclass);
