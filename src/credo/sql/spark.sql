-- The store's tables that scoring reads, as the Spark seam exports them to Parquet: the columns
-- a data lake must hold for `credo score --engine spark` (extra columns are ignored).

-- name: residents
SELECT resident FROM residents

-- name: ledger
SELECT agency, record_id, type, resident, occurred_at, resolves FROM ledger

-- name: revocations
SELECT agency, record_id, revoked_at FROM revocations

-- name: objection_events
SELECT objection, step, agency, record_id, happened_at FROM objection_events
