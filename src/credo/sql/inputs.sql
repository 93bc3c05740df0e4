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

-- name: policy_current
SELECT version, document, timezone FROM policies ORDER BY version DESC LIMIT 1

-- name: policy_insert
INSERT INTO policies
SELECT coalesce(max(version), 0) + 1, $name, $document, $sha256, $timezone, $now, $by FROM policies
RETURNING version
