SELECT offload.load_back($1::regclass, $2, $3) AS rows;
