-- The audit log's statements that read more than a row.

-- name: from_journal
-- The server's journal (one JSON array per line: seq, the entry's fields, prev_hash, hash, in the
-- audit table's column order) as audit rows, parsed by DuckDB: in C++ and off the GIL, a quarter
-- of the cost of building the same table in Python.
INSERT INTO audit
SELECT (j->>0)::BIGINT, (j->>1)::TIMESTAMP, j->>2, j->>3, j->>4, (j->>5)::BIGINT, j->>6, j->>7, j->>8,
       j->>9, j->>10, j->>11, j->>12, j->>13
FROM read_json_objects($path, format = 'newline_delimited') AS lines(j)
