SELECT offload.run($1::regclass) AS id;
