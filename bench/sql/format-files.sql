-- The same rows as a COPY text file and a COPY binary file, each behind a file_fdw table read with
-- `cat`, as segment tables are read: the parse cost of each format, with nothing else in the way.
-- {table} is the source table, {dir} a directory the server can write.
CREATE EXTENSION IF NOT EXISTS file_fdw;
CREATE SERVER IF NOT EXISTS bench_files FOREIGN DATA WRAPPER file_fdw;
COPY {table} TO '{dir}/{table}.text';
COPY {table} TO '{dir}/{table}.binary' (FORMAT binary);
CREATE TABLE {table}_shape (LIKE {table});
CREATE FOREIGN TABLE {table}_text () INHERITS ({table}_shape)
  SERVER bench_files OPTIONS (program 'cat {dir}/{table}.text', format 'text');
CREATE FOREIGN TABLE {table}_binary () INHERITS ({table}_shape)
  SERVER bench_files OPTIONS (program 'cat {dir}/{table}.binary', format 'binary');
