-- Reading stored standings (credo.standing).

-- name: registered
SELECT 1 FROM residents WHERE resident = $resident

-- name: stored
-- Every jurisdiction's (credo.jurisdictions), the home one first.
SELECT score, grade, changes_at, as_of, policy_version, jurisdiction FROM standings WHERE resident = $resident
ORDER BY home DESC, jurisdiction

-- name: stored_hits
SELECT jurisdiction, list, agency, record_id, type, occurred_at, takes_effect, expires_at
FROM standing_hits WHERE resident = $resident ORDER BY jurisdiction, list, takes_effect

-- name: revocation_reasons
-- Who withdrew each revoked record of the resident, and why.
SELECT r.agency || ':' || r.record_id, r.principal, r.reason
FROM revocations r JOIN ledger l ON l.agency = r.agency AND l.record_id = r.record_id
WHERE l.resident = $resident
