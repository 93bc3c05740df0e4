-- The rejects kept by ingest (sql/ingest.sql), listed a page at a time. Parameters: $agency (null:
-- every agency), $batch and $line (the marker: the page starts after that row), $limit.

-- name: total
SELECT count(*) FROM rejects WHERE $agency::VARCHAR IS NULL OR agency = $agency

-- name: page
-- In (batch, line) order, each row naming its record by what the agency's rows are keyed by (the
-- record_id; the population's resident_id; the telecom's phone), read from the row as received (JSON,
-- but for a row that could not be split), and saying whether a later batch accepted that record: the
-- ledger holds it, the registry holds the resident, or the phone is linked to the same resident.
WITH page AS (
    SELECT *, trim(CASE WHEN NOT json_valid(row_text) THEN NULL
                        WHEN agency = 'population' THEN json_extract_string(row_text, '$.resident_id')
                        WHEN agency = 'telecom' THEN json_extract_string(row_text, '$.phone')
                        ELSE json_extract_string(row_text, '$.record_id') END) AS key
    FROM rejects
    WHERE ($agency::VARCHAR IS NULL OR agency = $agency) AND (batch > $batch OR (batch = $batch AND line > $line))
    ORDER BY batch, line
    LIMIT $limit
)
SELECT p.batch, p.agency, p.source, p.line, p.agency || ':' || nullif(p.key, '') AS record, p.row_text,
       p.reason, p.field, p.message, p.received_at,
       CASE WHEN p.agency = 'population'
                 THEN EXISTS (SELECT 1 FROM residents x
                              WHERE x.resident = try_cast(left(p.key, 17) AS BIGINT) AND x.batch > p.batch)
            WHEN p.agency = 'telecom'
                 THEN EXISTS (SELECT 1 FROM phone_links x
                              WHERE x.phone = try_cast(p.key AS BIGINT) AND x.batch > p.batch
                                AND x.resident = try_cast(left(trim(json_extract_string(p.row_text, '$.resident_id')),
                                                               17) AS BIGINT))
            ELSE EXISTS (SELECT 1 FROM ledger x WHERE x.agency = p.agency AND x.record_id = p.key
                                                  AND x.batch > p.batch)
       END AS accepted_later
FROM page p
ORDER BY p.batch, p.line

-- The answer for each row of one batch sent through the API (credo.ingest.rejects.batch_rows).
-- name: of_batch
SELECT line, reason, field, message FROM rejects WHERE batch = $batch

-- name: batches_of_records
-- The batch that holds each of an agency's records: an earlier batch's means the row was a duplicate.
SELECT record_id, batch FROM ledger WHERE agency = $agency AND list_contains($records::VARCHAR[], record_id)

-- name: review_items_of_records
-- An agency's rows held for identity review (spec §10), by record_id: the latest item and its batch.
SELECT record_id, max(item), arg_max(batch, item) FROM review_items
WHERE agency = $agency AND list_contains($records::VARCHAR[], record_id) GROUP BY record_id
