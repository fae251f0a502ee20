-- Every recorded read endpoint, in a fixed order: reader programs change only with the set.
SELECT endpoint, target FROM offload.read_endpoints ORDER BY endpoint;
