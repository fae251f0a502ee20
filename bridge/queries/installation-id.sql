SELECT id FROM offload.installation LIMIT 1;
