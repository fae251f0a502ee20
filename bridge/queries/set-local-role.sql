-- Until the end of the transaction (or RESET ROLE), act as role $1.
SELECT set_config('role', $1, true);
