-- Identity review, spec §10: the registry as Splink sees it (credo.matching), and the review queue
-- (credo.review): held rows, their ranked candidates, and the judgements appended to them.

-- name: registry_state
SELECT count(*), max(batch) FROM residents

-- name: registry_sample
-- Residents for u's random pairs: a fixed pseudo-random sample (by a hash of the key), so the same
-- registry gives the same parameters.
SELECT resident AS unique_id, name,
       strptime(CAST(resident // 1000 % 100000000 AS VARCHAR), '%Y%m%d')::DATE AS birth_date, district
FROM residents ORDER BY hash(resident) LIMIT $n

-- name: blocked_registry
-- The residents in the blocks of the described rows: the same district, and the same birth date up to a
-- transposition of its digits (the eight digits sorted). described_in: unique_id, district, birth_digits.
WITH r AS (
    SELECT resident, name, district,
           strptime(CAST(resident // 1000 % 100000000 AS VARCHAR), '%Y%m%d')::DATE AS birth_date,
           array_to_string(list_sort(string_split(CAST(resident // 1000 % 100000000 AS VARCHAR), '')), '') AS digits
    FROM residents
    WHERE district IN (SELECT DISTINCT district FROM described_in)
)
SELECT resident AS unique_id, name, birth_date, district FROM r
WHERE (district, digits) IN (SELECT DISTINCT district, birth_digits FROM described_in)

-- name: framed
-- Rows as Splink compares them (frame_in: unique_id, name, name_pinyin, birth_date, district), with the
-- blocking keys: the birth date's eight digits sorted (the same key as blocked_registry's), the pinyin's initial.
SELECT unique_id, name, name_pinyin, birth_date, district,
       array_to_string(list_sort(string_split(strftime(birth_date, '%Y%m%d'), '')), '') AS birth_digits,
       left(name_pinyin, 1) AS name_initial
FROM frame_in

-- name: ranked
-- Splink's predictions, ranked per described row (the most probable first): the best `shown.top`, of
-- those at least `shown.least` probable (credo.matching's TOP and MIN_PROBABILITY), each with its
-- comparisons as JSON: per comparison the level (`levels`: Splink's gamma and its label), the weight,
-- the value given and the registry's.
WITH r AS (
    SELECT unique_id_l AS pos, unique_id_r AS resident, match_probability AS probability, match_weight AS weight,
           row_number() OVER (PARTITION BY unique_id_l ORDER BY match_weight DESC, unique_id_r) AS rank,
           gamma_name, mw_name, name_l, name_r, gamma_birth_date, mw_birth_date, birth_date_l, birth_date_r,
           gamma_district, mw_district, district_l, district_r
    FROM predicted
),
top AS (SELECT r.* FROM r, shown WHERE r.rank <= shown.top AND r.probability >= shown.least)
SELECT pos, rank, resident, probability, weight,
       CAST(json_object(
           'name', json_object('level', coalesce(n.label, 'not given'), 'weight', round(mw_name, 3),
                               'given', name_l, 'registry', name_r),
           'birth_date', json_object('level', coalesce(b.label, 'not given'), 'weight', round(mw_birth_date, 3),
                                     'given', CAST(birth_date_l AS VARCHAR), 'registry', CAST(birth_date_r AS VARCHAR)),
           'district', json_object('level', coalesce(d.label, 'not given'), 'weight', round(mw_district, 3),
                                   'given', district_l, 'registry', district_r)) AS VARCHAR) AS comparisons
FROM top
LEFT JOIN levels n ON n.comparison = 'name' AND n.gamma = top.gamma_name
LEFT JOIN levels b ON b.comparison = 'birth_date' AND b.gamma = top.gamma_birth_date
LEFT JOIN levels d ON d.comparison = 'district' AND d.gamma = top.gamma_district
ORDER BY pos, rank

-- name: model_at
SELECT model FROM identity_models WHERE residents = $residents AND registry_batch = $batch
ORDER BY estimated_at DESC LIMIT 1

-- name: model_store
INSERT INTO identity_models VALUES ($now, $residents, $batch, $model)

-- name: model_latest
SELECT model FROM identity_models ORDER BY estimated_at DESC LIMIT 1

-- name: hold
INSERT INTO review_items
SELECT item, $agency, record_id, type, occurred_at, attributes, subject_name, subject_birth_date, subject_district,
       $source, line, row_text, $batch, $now
FROM held_in

-- name: candidates_append
INSERT INTO review_candidates SELECT pos, rank, resident, probability, weight, comparisons FROM candidates_in

-- name: items
-- Items with their judgement (at most one: a second is refused before it is written).
SELECT i.item, i.agency, i.record_id, i.type, i.occurred_at, i.attributes, i.subject_name, i.subject_birth_date,
       i.subject_district, i.source, i.line, i.row_text, i.batch, i.received_at,
       j.step, j.resident, j.reason, j.principal, j.role, j.judged_at
FROM review_items i LEFT JOIN review_judgements j ON j.item = i.item
WHERE ($item IS NULL OR i.item = $item) AND ($agency IS NULL OR i.agency = $agency)
ORDER BY i.item

-- name: candidates
SELECT c.item, c.rank, c.resident, c.probability, c.weight, c.comparisons
FROM review_candidates c JOIN review_items i ON i.item = c.item
WHERE ($item IS NULL OR c.item = $item) AND ($agency IS NULL OR i.agency = $agency)
ORDER BY c.item, c.rank

-- name: candidate_keys
SELECT resident FROM review_candidates WHERE item = $item

-- name: in_ledger
SELECT 1 FROM ledger WHERE agency = $agency AND record_id = $record_id

-- name: confirm_append
INSERT INTO ledger
SELECT agency, record_id, type, $resident, $subject, occurred_at, NULL, attributes, $batch
FROM review_items WHERE item = $item

-- name: judge
INSERT INTO review_judgements VALUES ($item, $step, $resident, $reason, $principal, $role, $now, $batch)

-- name: decline_reject
INSERT INTO rejects
SELECT batch, agency, source, line, row_text, $reason, 'subject', $message, $now
FROM review_items WHERE item = $item

-- name: matched
SELECT l.agency, l.record_id, j.item, j.principal, j.judged_at, j.reason
FROM ledger l
JOIN review_judgements j ON j.batch = l.batch AND j.step = 'confirmed'
WHERE l.resident = $resident

-- name: seen
-- Described rows of a batch (seen_in: pos, record_id, type, occurred_at, attributes, subject_name,
-- subject_birth_date, subject_district) whose key an item of this agency holds, pending or confirmed:
-- the same content again is a duplicate, anything else a conflict. A declined item's key is free again.
SELECT s.pos,
       coalesce(i.type = s.type AND i.occurred_at = s.occurred_at AND i.subject_name = s.subject_name
                AND i.subject_birth_date = s.subject_birth_date AND i.subject_district = s.subject_district
                AND CAST(json(i.attributes) AS VARCHAR) IS NOT DISTINCT FROM CAST(json(s.attributes) AS VARCHAR),
                false) AS same
FROM seen_in s
JOIN review_items i ON i.agency = $agency AND i.record_id = s.record_id
LEFT JOIN review_judgements j ON j.item = i.item
WHERE j.step IS NULL OR j.step = 'confirmed'

-- name: pending_received
SELECT i.received_at FROM review_items i ANTI JOIN review_judgements j ON j.item = i.item

-- name: judged_count
SELECT count(*) FROM review_judgements

-- name: confirm_batch
-- A confirmed row enters the ledger in a batch of its own, received at the confirmation: that is when
-- Credo came to know the record was about this resident.
INSERT INTO batches VALUES ($batch, $agency, $source, $principal, $now, 1, 0, 0)
