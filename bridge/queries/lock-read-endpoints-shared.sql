SELECT offload.lock_read_endpoints_shared();
