-- A TPC-H-style lineitem table of {rows} rows (dbgen's columns and value ranges, generated in SQL):
-- ship dates from 1992 to 1998, so every row is older than any policy's cutoff.
CREATE TABLE lineitem (
  l_orderkey      bigint NOT NULL,
  l_partkey       integer NOT NULL,
  l_suppkey       integer NOT NULL,
  l_linenumber    integer NOT NULL,
  l_quantity      numeric(15, 2) NOT NULL,
  l_extendedprice numeric(15, 2) NOT NULL,
  l_discount      numeric(15, 2) NOT NULL,
  l_tax           numeric(15, 2) NOT NULL,
  l_returnflag    char(1) NOT NULL,
  l_linestatus    char(1) NOT NULL,
  l_shipdate      date NOT NULL,
  l_commitdate    date NOT NULL,
  l_receiptdate   date NOT NULL,
  l_shipinstruct  char(25) NOT NULL,
  l_shipmode      char(10) NOT NULL,
  l_comment       varchar(44) NOT NULL,
  PRIMARY KEY (l_orderkey, l_linenumber)
);

INSERT INTO lineitem
SELECT i / 4 + 1, 1 + (i * 31) % 200000, 1 + (i * 17) % 10000, i % 4 + 1,
       1 + i % 50,
       round(((1 + i % 50) * (900 + ((i * 31) % 200000) % 1000 + 0.01 * (i % 100)))::numeric, 2),
       (i % 11) / 100.0,
       (i % 9) / 100.0,
       (ARRAY['A', 'N', 'R'])[1 + i % 3],
       (ARRAY['F', 'O'])[1 + i % 2],
       ship,
       ship + 30 - i % 61,
       ship + 1 + i % 30,
       (ARRAY['DELIVER IN PERSON', 'COLLECT COD', 'NONE', 'TAKE BACK RETURN'])[1 + i % 4],
       (ARRAY['REG AIR', 'AIR', 'RAIL', 'SHIP', 'TRUCK', 'MAIL', 'FOB'])[1 + i % 7],
       left(concat_ws(' ',
         (ARRAY['carefully', 'quickly', 'slyly', 'furiously', 'blithely', 'final', 'regular', 'express', 'ironic', 'pending', 'bold'])[1 + i % 11],
         (ARRAY['packages', 'deposits', 'requests', 'accounts', 'instructions', 'theodolites', 'pinto beans', 'foxes', 'ideas', 'dependencies', 'platelets', 'asymptotes', 'courts'])[1 + (i / 11) % 13],
         (ARRAY['sleep', 'wake', 'haggle', 'nag', 'use', 'boost', 'affix', 'detect', 'integrate', 'cajole', 'doze', 'print', 'maintain', 'solve', 'thrash', 'engage', 'grow'])[1 + (i / 143) % 17],
         (ARRAY['about the', 'above the', 'across the', 'after the', 'against the', 'along the', 'among the'])[1 + (i / 2431) % 7],
         (ARRAY['even', 'special', 'unusual', 'silent', 'ruthless', 'fluffy', 'dogged'])[1 + (i / 7) % 7],
         (ARRAY['frets', 'dolphins', 'warhorses', 'sheaves', 'waters', 'sentiments', 'tithes', 'excuses'])[1 + (i / 3) % 8]), 44)
  FROM generate_series(0, {rows} - 1) AS i,
       LATERAL (SELECT date '1992-01-02' + (i::bigint * 2520 / {rows})::int AS ship) AS s;

CREATE INDEX lineitem_shipdate ON lineitem (l_shipdate);
