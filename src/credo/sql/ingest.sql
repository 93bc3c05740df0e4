-- The rules of spec §2 and §3 that need the store, as joins of a batch's candidate rows against it.
-- Row-alone rules run vectorised in credo.ingest; every input here is an Arrow table registered by
-- credo.ingest, keyed by `pos` (the row's position in the feed). Parameters: $agency, $batch, $now.

-- name: json_not_object
-- attributes must be a JSON object (CASE, so json_type never sees text that is not JSON).
SELECT pos FROM json_in
WHERE NOT CASE WHEN json_valid(value) THEN json_type(value) = 'OBJECT' ELSE false END

-- name: unknown_residents
SELECT p.pos FROM residents_probe p ANTI JOIN residents r ON r.resident = p.resident

-- name: records_holders
-- A phone resolves to whoever held it at occurred_at (links are [valid_from, valid_until)).
SELECT c.pos, min(p.resident) AS holder
FROM phone_in c
JOIN phone_links p ON p.phone = c.phone AND p.valid_from <= c.occurred_at
                  AND (p.valid_until IS NULL OR c.occurred_at < p.valid_until)
GROUP BY c.pos

-- name: ledger_has_agency
SELECT 1 FROM ledger WHERE agency = $agency LIMIT 1

-- name: records_seen
-- Keys already in the ledger: the same content again is a duplicate, anything else a conflict.
-- Attributes are compared as text laid out by json(); where that is all that differs, both texts are
-- returned (`stored`, `given`) for credo.ingest to compare as JSON values (key order aside).
WITH m AS (
    SELECT c.pos,
           coalesce(l.type = c.type AND l.resident = c.resident AND l.occurred_at = c.occurred_at
                    AND l.resolves IS NOT DISTINCT FROM c.resolves, false) AS alike,
           CAST(json(l.attributes) AS VARCHAR) IS NOT DISTINCT FROM CAST(json(c.attributes) AS VARCHAR) AS same_text,
           l.attributes AS stored, c.attributes AS given
    FROM cand_in c
    JOIN ledger l ON l.agency = $agency AND l.record_id = c.record_id
)
SELECT pos, alike AND same_text AS same,
       CASE WHEN alike AND NOT same_text THEN stored END AS stored,
       CASE WHEN alike AND NOT same_text THEN given END AS given
FROM m

-- name: records_repeated
-- Keys given more than once in the batch (candidates found by hash, compared exactly here): the
-- first standing row counts; a later one is a duplicate when identical to it, else a conflict
-- (attributes that differ only as text come back as in records_seen).
WITH a AS (SELECT *, row_number() OVER (PARTITION BY record_id ORDER BY pos) AS nth FROM again_in),
m AS (
    SELECT r.pos, f.pos AS first,
           coalesce(r.type = f.type AND r.resident = f.resident AND r.occurred_at = f.occurred_at
                    AND r.resolves IS NOT DISTINCT FROM f.resolves, false) AS alike,
           CAST(json(r.attributes) AS VARCHAR) IS NOT DISTINCT FROM CAST(json(f.attributes) AS VARCHAR) AS same_text,
           f.attributes AS stored, r.attributes AS given
    FROM a r JOIN a f ON f.record_id = r.record_id AND f.nth = 1
    WHERE r.nth > 1
)
SELECT pos, first, alike AND same_text AS same,
       CASE WHEN alike AND NOT same_text THEN stored END AS stored,
       CASE WHEN alike AND NOT same_text THEN given END AS given
FROM m

-- name: records_resolves
-- `resolves` names a record of the same agency: in the ledger, or standing earlier in this batch;
-- of a type the resolver's type may resolve (p_resolves), about the same resident. Inputs: asking_in
-- (the resolving rows) and targets_in (the batch's rows they name). Returns the failures.
WITH targets AS (
    SELECT record_id, type, resident, -1 AS pos FROM ledger
    WHERE agency = $agency AND record_id IN (SELECT resolves FROM asking_in)
    UNION ALL
    SELECT record_id, type, resident, pos FROM targets_in
),
first AS (SELECT record_id, arg_min(type, pos) AS type, arg_min(resident, pos) AS resident, min(pos) AS pos
          FROM targets GROUP BY record_id),
judged AS (
    SELECT a.pos,
           CASE WHEN f.record_id IS NULL OR f.pos >= a.pos THEN 'unknown_resolves'
                WHEN f.resident <> a.resident THEN 'bad_resolves'
                WHEN NOT EXISTS (SELECT 1 FROM p_resolves p WHERE p.resolver = a.type AND p.target = f.type)
                  THEN 'bad_resolves'
           END AS reason
    FROM asking_in a LEFT JOIN first f ON f.record_id = a.resolves
)
SELECT pos, reason FROM judged WHERE reason IS NOT NULL

-- name: records_append
INSERT INTO ledger
SELECT $agency, record_id, type, resident, subject, occurred_at, resolves, attributes, $batch
FROM accepted_in

-- name: rejects_append
-- $row_text and $got are expressions over the feed's fixed column names, filled in by credo.ingest.
INSERT INTO rejects
SELECT $batch, $agency, $source, r._line, coalesce(r._raw, CAST($row_text AS VARCHAR)), r.reason, r.field,
       CASE WHEN r.field = '(row)' THEN r.detail
            WHEN r.reason = 'unsafe_characters' THEN r.field || ': ' || r.detail  -- quotes the value escaped
            ELSE r.field || ': ' || coalesce(r.detail, m.text, r.reason)
                 || CASE WHEN nullif(trim($got), '') IS NULL THEN ''
                         ELSE ' (value ''' || left($got, $shown)
                              || CASE WHEN length($got) > $shown THEN '...' ELSE '' END || ''')' END
       END,
       $now
FROM rejected_in r LEFT JOIN reasons_in m ON m.reason = r.reason

-- name: population_same
-- A registry row identical to the stored resident changes nothing: a duplicate.
SELECT p.pos FROM population_in p
JOIN residents r ON r.resident = p.resident
WHERE r.name = p.name AND r.district = p.district AND r.status = p.status
  AND r.status_date IS NOT DISTINCT FROM p.status_date

-- name: population_upsert
-- The registry is current state: a changed resident's row is replaced. A new district (a move, or the first
-- one) is also kept in `districts` with its batch, so membership of a jurisdiction is read at T and K
-- (credo.jurisdictions).
INSERT INTO districts
SELECT p.resident, p.district, $batch FROM population_in p SEMI JOIN population_ok o ON o.pos = p.pos
WHERE NOT EXISTS (SELECT 1 FROM residents r WHERE r.resident = p.resident AND r.district = p.district);
DELETE FROM residents WHERE resident IN (SELECT p.resident FROM population_in p SEMI JOIN population_ok o ON o.pos = p.pos);
INSERT INTO residents
SELECT p.resident, p.name, p.district, p.status, p.status_date, $now, $batch
FROM population_in p SEMI JOIN population_ok o ON o.pos = p.pos

-- name: telecom_checked
-- Links are [valid_from, valid_until). The same link again is a duplicate (also twice in one batch);
-- a link overlapping another holder's (stored or in this batch) is a data error, reported on every
-- row involved. A link with the same (phone, resident, valid_from) as a stored one replaces it: that
-- is how the operator closes a link when the number changes hands (so the stored links a batch
-- replaces are left out of the overlap check; the batch's own rows are checked against each other).
WITH stored AS (SELECT p.* FROM phone_links p WHERE p.phone IN (SELECT phone FROM links_in)),
kept AS (SELECT s.* FROM stored s ANTI JOIN links_in l
         ON l.phone = s.phone AND l.resident = s.resident AND l.valid_from = s.valid_from)
SELECT l.pos, 'duplicate' AS reason FROM links_in l
JOIN stored s ON s.phone = l.phone AND s.resident = l.resident AND s.valid_from = l.valid_from
             AND s.valid_until IS NOT DISTINCT FROM l.valid_until
UNION ALL
SELECT l.pos, 'duplicate' FROM links_in l
JOIN links_in e ON e.phone = l.phone AND e.resident = l.resident AND e.valid_from = l.valid_from
               AND e.valid_until IS NOT DISTINCT FROM l.valid_until AND e.pos < l.pos
UNION ALL
SELECT l.pos, 'overlapping_holder' FROM links_in l
JOIN kept s ON s.phone = l.phone
             AND s.valid_from < coalesce(l.valid_until, TIMESTAMP '9999-12-31')
             AND l.valid_from < coalesce(s.valid_until, TIMESTAMP '9999-12-31')
UNION ALL
SELECT l.pos, 'overlapping_holder' FROM links_in l
JOIN links_in o ON o.phone = l.phone AND o.pos <> l.pos
               AND NOT (o.resident = l.resident AND o.valid_from = l.valid_from
                        AND o.valid_until IS NOT DISTINCT FROM l.valid_until)
               AND o.valid_from < coalesce(l.valid_until, TIMESTAMP '9999-12-31')
               AND l.valid_from < coalesce(o.valid_until, TIMESTAMP '9999-12-31')

-- name: telecom_upsert
DELETE FROM phone_links p USING (SELECT l.* FROM links_in l SEMI JOIN telecom_ok o ON o.pos = l.pos) l
WHERE p.phone = l.phone AND p.resident = l.resident AND p.valid_from = l.valid_from;
INSERT INTO phone_links
SELECT l.phone, l.resident, l.valid_from, l.valid_until, $batch FROM links_in l SEMI JOIN telecom_ok o ON o.pos = l.pos
