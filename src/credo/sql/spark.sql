-- The store's tables that scoring reads, as the Spark seam exports them to Parquet: the columns
-- a data lake must hold for `credo score --engine spark` (extra columns are ignored).

-- name: residents
SELECT resident FROM residents

-- name: ledger
SELECT agency, record_id, type, resident, occurred_at, resolves, batch FROM ledger

-- name: revocations
SELECT agency, record_id, revoked_at FROM revocations

-- name: objection_events
-- `resident`: a scoped run (one per jurisdiction with regions, credo.jurisdictions) reads its residents' objections.
SELECT objection, step, resident, agency, record_id, happened_at FROM objection_events

-- name: batches
-- Read only for a standing at a known-at time K (credo.known), as is `known`.
SELECT batch, received_at FROM batches

-- name: known
SELECT seq, known_at, kind, batch, agency, record_id, objection, step, policy FROM known
