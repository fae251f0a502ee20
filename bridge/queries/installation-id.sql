SELECT offload.current_installation() AS id;
