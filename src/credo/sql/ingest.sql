-- Validation of an agency's record batch, spec §3. Input: batch_in (text columns, _line,
-- key/phone/id_reason from credo.ids), p_types, p_resolves. Parameters: $agency, $latest
-- (now + 1 day). The session TimeZone is the city's, so a bare date is local midnight.

-- name: records_parsed
SELECT b._line, b.key, b.phone, b.id_reason,
       nullif(trim(b.record_id), '') AS record_id,
       nullif(trim(b.type), '') AS type,
       nullif(trim(b.subject), '') AS subject,
       nullif(trim(b.occurred_at), '') AS occurred_text,
       CAST(TRY_CAST(nullif(trim(b.occurred_at), '') AS TIMESTAMPTZ) AS TIMESTAMP) AS occurred_at,
       nullif(trim(b.resolves), '') AS resolves,
       nullif(trim(b.attributes), '') AS attributes_text,
       p.agency AS type_agency,
       json_object('record_id', b.record_id, 'type', b.type, 'subject', b.subject,
                   'occurred_at', b.occurred_at, 'resolves', b.resolves, 'attributes', b.attributes) AS row_text
FROM batch_in b LEFT JOIN p_types p ON p.type = trim(b.type)

-- name: records_resolved
SELECT p.*,
       CASE WHEN p.attributes_text IS NULL THEN NULL
            WHEN json_valid(p.attributes_text) AND json_type(p.attributes_text) = 'OBJECT'
            THEN CAST(json(p.attributes_text) AS VARCHAR) END AS attributes,
       h.resident AS holder,
       coalesce(p.key, h.resident) AS resident,
       EXISTS (SELECT 1 FROM residents r WHERE r.resident = coalesce(p.key, h.resident)) AS known,
       row_number() OVER (PARTITION BY p.record_id ORDER BY p._line) AS nth
FROM records_parsed p
LEFT JOIN (SELECT pl.phone, pl.valid_from, pl.valid_until, pl.resident FROM phone_links pl
           WHERE pl.phone IN (SELECT phone FROM batch_in WHERE phone IS NOT NULL)) h
       ON h.phone = p.phone AND h.valid_from <= p.occurred_at
          AND (h.valid_until IS NULL OR p.occurred_at < h.valid_until)

-- name: records_targets
-- What a `resolves` may name: a record already in the ledger, or one earlier in this batch.
SELECT record_id, type, resident, 0 AS _line FROM ledger
WHERE agency = $agency AND record_id IN (SELECT resolves FROM records_resolved WHERE resolves IS NOT NULL)
UNION ALL
SELECT record_id, type, resident, _line FROM records_resolved WHERE nth = 1 AND record_id IS NOT NULL

-- name: records_classified
SELECT r.*, l.type AS old_type,
       CASE
         WHEN r.record_id IS NULL THEN 'missing_record_id'
         WHEN length(r.record_id) > 64 THEN 'record_id_too_long'
         WHEN r.type IS NULL THEN 'missing_type'
         WHEN r.type_agency IS NULL THEN 'unknown_type'
         WHEN r.type_agency <> $agency THEN 'type_not_allowed'
         WHEN r.subject IS NULL THEN 'missing_subject'
         WHEN r.id_reason IS NOT NULL THEN r.id_reason
         WHEN r.occurred_text IS NULL THEN 'missing_date'
         WHEN r.occurred_at IS NULL THEN 'bad_date'
         WHEN r.occurred_at < TIMESTAMP '1900-01-01' THEN 'date_too_early'
         WHEN r.occurred_at > $latest THEN 'future_date'
         WHEN r.attributes_text IS NOT NULL AND r.attributes IS NULL THEN 'bad_attributes'
         WHEN octet_length(encode(r.attributes)) > 4096 THEN 'attributes_too_large'
         WHEN r.phone IS NOT NULL AND r.holder IS NULL THEN 'unresolved_phone'
         WHEN NOT r.known THEN 'unknown_resident'
         WHEN l.record_id IS NOT NULL AND l.type = r.type AND l.resident = r.resident
              AND l.occurred_at = r.occurred_at AND l.resolves IS NOT DISTINCT FROM r.resolves
              AND l.attributes IS NOT DISTINCT FROM r.attributes THEN 'duplicate'
         WHEN l.record_id IS NOT NULL THEN 'conflict'
         WHEN r.nth > 1 AND f.type = r.type AND f.subject = r.subject AND f.occurred_at = r.occurred_at
              AND f.resolves IS NOT DISTINCT FROM r.resolves
              AND f.attributes IS NOT DISTINCT FROM r.attributes THEN 'duplicate'
         WHEN r.nth > 1 THEN 'conflict'
         WHEN r.resolves IS NOT NULL AND t.record_id IS NULL THEN 'unknown_resolves'
         WHEN r.resolves IS NOT NULL AND (t.resident <> r.resident OR NOT EXISTS (
              SELECT 1 FROM p_resolves pr WHERE pr.resolver = r.type AND pr.target = t.type)) THEN 'bad_resolves'
       END AS reason
FROM records_resolved r
LEFT JOIN ledger l ON l.agency = $agency AND l.record_id = r.record_id
LEFT JOIN records_resolved f ON f.record_id = r.record_id AND f.nth = 1 AND r.nth > 1
LEFT JOIN (SELECT record_id, min_by(type, _line) AS type, min_by(resident, _line) AS resident,
                  min(_line) AS _line FROM records_targets GROUP BY record_id) t
       ON t.record_id = r.resolves AND t._line < r._line

-- name: records_append
INSERT INTO ledger
SELECT $agency, record_id, type, resident, subject, occurred_at, resolves, attributes, $batch
FROM classified WHERE reason IS NULL

-- name: rejects_append
INSERT INTO rejects
SELECT $batch, $agency, $source, _line, row_text, reason, field, message, $now FROM rejected_in

-- name: population_classified
SELECT b._line, b.key, b.id_reason,
       nullif(trim(b.name), '') AS name, nullif(trim(b.district), '') AS district,
       coalesce(nullif(lower(trim(b.status)), ''), 'active') AS status,
       nullif(trim(b.status_date), '') AS status_text,
       CAST(TRY_CAST(nullif(trim(b.status_date), '') AS TIMESTAMPTZ) AS TIMESTAMP) AS status_date,
       json_object('resident_id', b.resident_id, 'name', b.name, 'district', b.district,
                   'status', b.status, 'status_date', b.status_date) AS row_text,
       CASE
         WHEN b.id_reason IS NOT NULL THEN b.id_reason
         WHEN nullif(trim(b.name), '') IS NULL THEN 'missing_name'
         WHEN NOT regexp_full_match(coalesce(trim(b.district), ''), '[0-9]{6}') THEN 'bad_district'
         WHEN coalesce(nullif(lower(trim(b.status)), ''), 'active') NOT IN ('active', 'deceased', 'moved_out')
           THEN 'bad_status'
         WHEN nullif(trim(b.status_date), '') IS NOT NULL
              AND TRY_CAST(nullif(trim(b.status_date), '') AS TIMESTAMPTZ) IS NULL THEN 'bad_date'
       END AS reason
FROM batch_in b

-- name: population_upsert
-- The registry is current state: the last row of a batch for a resident wins.
DELETE FROM residents WHERE resident IN (SELECT key FROM population_ok);
INSERT INTO residents
SELECT key, name, district, status, status_date, $now, $batch FROM population_ok

-- name: telecom_classified
SELECT b._line, b.phone_key AS phone, b.key, b.id_reason, b.phone_reason,
       CAST(TRY_CAST(nullif(trim(b.valid_from), '') AS TIMESTAMPTZ) AS TIMESTAMP) AS valid_from,
       CAST(TRY_CAST(nullif(trim(b.valid_to), '') AS TIMESTAMPTZ) AS TIMESTAMP) + INTERVAL 1 DAY AS valid_until,
       nullif(trim(b.valid_to), '') AS valid_to_text,
       json_object('phone', b.phone, 'resident_id', b.resident_id, 'valid_from', b.valid_from,
                   'valid_to', b.valid_to) AS row_text,
       EXISTS (SELECT 1 FROM residents r WHERE r.resident = b.key) AS known
FROM batch_in b

-- name: telecom_checked
-- A link overlapping another holder's link of the same phone (stored or in this batch) is
-- a data error. A link with the same (phone, resident, valid_from) as a stored one replaces
-- it: that is how the operator closes a link when the number changes hands.
SELECT c.*,
       CASE
         WHEN c.phone_reason IS NOT NULL THEN c.phone_reason
         WHEN c.id_reason IS NOT NULL THEN c.id_reason
         WHEN c.valid_from IS NULL THEN 'bad_date'
         WHEN c.valid_to_text IS NOT NULL AND c.valid_until IS NULL THEN 'bad_date'
         WHEN c.valid_until IS NOT NULL AND c.valid_until <= c.valid_from THEN 'bad_period'
         WHEN NOT c.known THEN 'unknown_resident'
         WHEN EXISTS (SELECT 1 FROM phone_links p WHERE p.phone = c.phone AND p.resident = c.key
                      AND p.valid_from = c.valid_from
                      AND p.valid_until IS NOT DISTINCT FROM c.valid_until) THEN 'duplicate'
         WHEN EXISTS (SELECT 1 FROM phone_links p WHERE p.phone = c.phone
                      AND NOT (p.resident = c.key AND p.valid_from = c.valid_from)
                      AND p.valid_from < coalesce(c.valid_until, TIMESTAMP '9999-12-31')
                      AND c.valid_from < coalesce(p.valid_until, TIMESTAMP '9999-12-31'))
           THEN 'overlapping_holder'
         WHEN EXISTS (SELECT 1 FROM telecom_classified o WHERE o.phone = c.phone AND o._line <> c._line
                      AND o.valid_from < coalesce(c.valid_until, TIMESTAMP '9999-12-31')
                      AND c.valid_from < coalesce(o.valid_until, TIMESTAMP '9999-12-31'))
           THEN 'overlapping_holder'
       END AS reason
FROM telecom_classified c

-- name: telecom_upsert
DELETE FROM phone_links WHERE (phone, resident, valid_from) IN
    (SELECT (phone, key, valid_from) FROM telecom_ok);
INSERT INTO phone_links SELECT phone, key, valid_from, valid_until, $batch FROM telecom_ok
