SELECT offload.set_reader_program($1::regclass, $2) AS changed;
