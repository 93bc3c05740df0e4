-- The scoring pipeline's inputs, read from the DuckDB store.
-- A scoped run (the residents of one batch) sees the same relations, filtered.

-- name: residents_all
SELECT resident FROM residents

-- name: residents_scoped
SELECT DISTINCT resident FROM scope_in WHERE resident IN (SELECT resident FROM residents)

-- name: ledger_all
SELECT agency, record_id, type, resident, occurred_at, resolves FROM ledger

-- name: ledger_scoped
SELECT agency, record_id, type, resident, occurred_at, resolves FROM ledger
WHERE resident IN (SELECT resident FROM scope_in)

-- name: revocations_all
SELECT agency, record_id, revoked_at FROM revocations

-- name: revocations_scoped
-- Only the scoped ledger's revocations (read after ledger_in is bound).
SELECT r.agency, r.record_id, r.revoked_at FROM revocations r
JOIN ledger_in l ON l.agency = r.agency AND l.record_id = r.record_id

-- name: disputes_all
SELECT o.objection, o.agency, o.record_id, o.happened_at AS opened_at, c.closed_at
FROM objection_events o
LEFT JOIN (SELECT objection, min(happened_at) AS closed_at FROM objection_events
           WHERE step IN ('upheld', 'rejected') GROUP BY objection) c ON c.objection = o.objection
WHERE o.step = 'opened'

-- name: disputes_scoped
-- Only objections about the scoped residents' records.
SELECT o.objection, o.agency, o.record_id, o.happened_at AS opened_at, c.closed_at
FROM objection_events o
LEFT JOIN (SELECT objection, min(happened_at) AS closed_at FROM objection_events
           WHERE step IN ('upheld', 'rejected') GROUP BY objection) c ON c.objection = o.objection
WHERE o.step = 'opened' AND o.resident IN (SELECT resident FROM scope_in)

-- Known at K (`known_in(known_at, seq)`, credo.known): only what Credo held then. A write is known
-- from its `known` row (the time its transaction committed, and its audit entry's seq), or, with
-- none, from its own time; a record from its batch's, and one whose batch has no row at all (a
-- ledger loaded straight into the table) as known always.

-- name: ledger_known_all
SELECT l.agency, l.record_id, l.type, l.resident, l.occurred_at, l.resolves
FROM ledger l CROSS JOIN known_in k
LEFT JOIN batches b ON b.batch = l.batch
LEFT JOIN known w ON w.kind = 'batch' AND w.batch = l.batch
WHERE coalesce(w.known_at, b.received_at, l.occurred_at) <= k.known_at AND coalesce(w.seq, 0) < k.seq

-- name: ledger_known_scoped
SELECT l.agency, l.record_id, l.type, l.resident, l.occurred_at, l.resolves
FROM ledger l CROSS JOIN known_in k
LEFT JOIN batches b ON b.batch = l.batch
LEFT JOIN known w ON w.kind = 'batch' AND w.batch = l.batch
WHERE coalesce(w.known_at, b.received_at, l.occurred_at) <= k.known_at AND coalesce(w.seq, 0) < k.seq
  AND l.resident IN (SELECT resident FROM scope_in)

-- name: revocations_known_all
SELECT r.agency, r.record_id, r.revoked_at FROM revocations r CROSS JOIN known_in k
LEFT JOIN known w ON w.kind = 'revocation' AND w.agency = r.agency AND w.record_id = r.record_id
WHERE coalesce(w.known_at, r.revoked_at) <= k.known_at AND coalesce(w.seq, 0) < k.seq

-- name: revocations_known_scoped
SELECT r.agency, r.record_id, r.revoked_at FROM revocations r CROSS JOIN known_in k
JOIN ledger_in l ON l.agency = r.agency AND l.record_id = r.record_id
LEFT JOIN known w ON w.kind = 'revocation' AND w.agency = r.agency AND w.record_id = r.record_id
WHERE coalesce(w.known_at, r.revoked_at) <= k.known_at AND coalesce(w.seq, 0) < k.seq

-- name: disputes_known_all
WITH steps AS (
  SELECT o.objection, o.step, o.agency, o.record_id, o.happened_at
  FROM objection_events o CROSS JOIN known_in k
  LEFT JOIN known w ON w.kind = 'objection' AND w.objection = o.objection AND w.step = o.step
  WHERE coalesce(w.known_at, o.happened_at) <= k.known_at AND coalesce(w.seq, 0) < k.seq
)
SELECT o.objection, o.agency, o.record_id, o.happened_at AS opened_at, c.closed_at
FROM steps o
LEFT JOIN (SELECT objection, min(happened_at) AS closed_at FROM steps
           WHERE step IN ('upheld', 'rejected') GROUP BY objection) c ON c.objection = o.objection
WHERE o.step = 'opened'

-- name: disputes_known_scoped
WITH steps AS (
  SELECT o.objection, o.step, o.resident, o.agency, o.record_id, o.happened_at
  FROM objection_events o CROSS JOIN known_in k
  LEFT JOIN known w ON w.kind = 'objection' AND w.objection = o.objection AND w.step = o.step
  WHERE coalesce(w.known_at, o.happened_at) <= k.known_at AND coalesce(w.seq, 0) < k.seq
    AND o.resident IN (SELECT resident FROM scope_in)
)
SELECT o.objection, o.agency, o.record_id, o.happened_at AS opened_at, c.closed_at
FROM steps o
LEFT JOIN (SELECT objection, min(happened_at) AS closed_at FROM steps
           WHERE step IN ('upheld', 'rejected') GROUP BY objection) c ON c.objection = o.objection
WHERE o.step = 'opened'

-- name: policy_current
SELECT version, document, timezone FROM policies ORDER BY version DESC LIMIT 1

-- name: policy_insert
-- `jurisdiction` NULL: a policy without a jurisdiction block (credo.jurisdictions).
INSERT INTO policies (version, name, document, sha256, timezone, applied_at, applied_by, jurisdiction)
SELECT coalesce(max(version), 0) + 1, $name, $document, $sha256, $timezone, $now, $by, $jurisdiction FROM policies
RETURNING version

-- name: policies_in_force
-- The latest version of each jurisdiction (NULL, the policies without a block, is one slot), oldest first.
SELECT version, document FROM (
  SELECT version, document, row_number() OVER (PARTITION BY jurisdiction ORDER BY version DESC) AS n
  FROM policies) WHERE n = 1
ORDER BY version

-- name: policy_versions
-- Every version, for `credo policy list`: grouped by jurisdiction in the caller.
SELECT version, name, jurisdiction, sha256, applied_at, applied_by FROM policies ORDER BY version

-- Jurisdictions (credo.jurisdictions): who belongs where at T, known at K. Reads `clock_in`, `known_in`
-- (a user's K, or none known: every entry) and `jurisdictions_in (jurisdiction, region, rank)`.

-- name: districts_at
-- The district on file for each resident at T: the latest of `districts` whose batch was known by T and
-- by K (a move is received with its batch); a resident with none known then (registered later) reads as
-- first registered, and one with no history at all (loaded straight into the table) by the register's row.
-- Everyone, or (credo_among_every false) the residents in credo_among.
WITH seen AS (
  SELECT d.resident, d.district, coalesce(d.batch, 0) AS batch,
         coalesce(coalesce(w.known_at, b.received_at) <= least(c.t, k.known_at) AND coalesce(w.seq, 0) < k.seq,
                  true) AS held
  FROM districts d CROSS JOIN clock_in c CROSS JOIN known_in k
  LEFT JOIN batches b ON b.batch = d.batch
  LEFT JOIN known w ON w.kind = 'batch' AND w.batch = d.batch
), ranked AS (
  SELECT resident, district, row_number() OVER (
    PARTITION BY resident ORDER BY held DESC, CASE WHEN held THEN -batch ELSE batch END) AS n
  FROM seen
)
SELECT r.resident, coalesce(k.district, r.district) AS district
FROM residents r LEFT JOIN ranked k ON k.resident = r.resident AND k.n = 1
WHERE (SELECT every FROM credo_among_every) OR r.resident IN (SELECT resident FROM credo_among)

-- name: members
-- Each (resident, jurisdiction) that holds the resident at T: one whose regions hold a prefix of their
-- district, or one holding everyone (region NULL); `home` is the longest matching prefix (between
-- jurisdictions holding everyone, the first applied).
WITH m AS (
  SELECT d.resident, j.jurisdiction, max(coalesce(length(j.region), 0)) AS depth, min(j.rank) AS rank
  FROM districts_in d
  JOIN jurisdictions_in j ON j.region IS NULL OR substr(d.district, 1, length(j.region)) = j.region
  GROUP BY d.resident, j.jurisdiction
)
SELECT resident, jurisdiction,
       row_number() OVER (PARTITION BY resident ORDER BY depth DESC, rank) = 1 AS home
FROM m
ORDER BY resident, jurisdiction
