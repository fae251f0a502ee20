SELECT * FROM offload.verify($1::regclass);
