-- name: full
-- TPC-H Q1, the pricing summary report: a full scan that aggregates most columns.
SELECT l_returnflag, l_linestatus, sum(l_quantity) AS sum_qty, sum(l_extendedprice) AS sum_base_price,
       sum(l_extendedprice * (1 - l_discount)) AS sum_disc_price,
       sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) AS sum_charge,
       avg(l_quantity) AS avg_qty, avg(l_extendedprice) AS avg_price, avg(l_discount) AS avg_disc,
       count(*) AS count_order
  FROM {table}
 WHERE l_shipdate <= date '1998-12-01' - interval '90 days'
 GROUP BY l_returnflag, l_linestatus
 ORDER BY l_returnflag, l_linestatus;

-- name: day
SELECT count(*), sum(l_extendedprice), avg(l_discount)
  FROM {table}
 WHERE l_shipdate = date '1995-06-17';

-- name: point
-- One line item by its primary key (every row is cold).
SELECT * FROM {table} WHERE l_orderkey = 1000 AND l_linenumber = 1;

-- name: join100
-- The line items of 100 orders, looked up by a join.
SELECT count(*), sum(l.l_extendedprice) FROM generate_series(1000, 100000, 1000) AS k(o) JOIN {table} l ON l.l_orderkey = k.o;
