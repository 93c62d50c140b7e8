-- Plugin key-value storage: one row per (plugin, key).
--
-- `value` is `json`, not `jsonb`: it keeps the text exactly as the host serialised it, and it
-- accepts the escape `\u0000` in strings, which `jsonb` rejects. `num` and `ival` are derived
-- from it by the host on every write, never by hand: `num` is the value as a number (NULL when it
-- is not a number) so that `kv.list` can order by value, and `ival` is the value as a 64-bit
-- integer (NULL otherwise) so that `kv.incr` can add in one atomic statement.
--
-- COLLATE "C" gives byte order (code point order for UTF-8) whatever the database's locale, the
-- same order as SQLite's BINARY collation, and lets prefix scans use the primary key.
CREATE TABLE kv (
    plugin TEXT COLLATE "C" NOT NULL,
    key    TEXT COLLATE "C" NOT NULL,
    value  JSON NOT NULL,
    num    DOUBLE PRECISION,
    ival   BIGINT,
    PRIMARY KEY (plugin, key)
);

CREATE INDEX kv_by_num ON kv (plugin, num);
