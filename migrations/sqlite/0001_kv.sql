-- Plugin key-value storage: one row per (plugin, key).
--
-- `value` holds the JSON text exactly as the host serialised it. `num` and `ival` are derived
-- from it by the host on every write, never by hand: `num` is the value as a number (NULL when it
-- is not a number) so that `kv.list` can order by value, and `ival` is the value as a 64-bit
-- integer (NULL otherwise) so that `kv.incr` can add in one atomic statement.
--
-- Keys compare with the BINARY collation (byte order of UTF-8, which is code point order); the
-- PostgreSQL schema uses COLLATE "C" for the same order.
CREATE TABLE kv (
    plugin TEXT NOT NULL,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    num    REAL,
    ival   INTEGER,
    PRIMARY KEY (plugin, key)
);

CREATE INDEX kv_by_num ON kv (plugin, num);
