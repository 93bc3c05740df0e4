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

-- name: write_scored
-- The bound pipeline's standings appended under one policy's jurisdiction: every resident scored, or
-- ($every false) those in credo_only; home for all ($home_all), none, or ($home_listed) those in credo_homes;
-- a policy that gives lists only ($scores false) stores no score or grade.
INSERT INTO standings
SELECT s.resident, CASE WHEN $scores THEN s.score END, CASE WHEN $scores THEN s.grade END, s.changes_at,
       $as_of, $version, $jurisdiction,
       CASE WHEN $home_listed THEN s.resident IN (SELECT resident FROM credo_homes) ELSE $home_all END
FROM scored s
WHERE $every OR s.resident IN (SELECT resident FROM credo_only)

-- name: write_hits
INSERT INTO standing_hits
SELECT s.resident, s.list, s.agency, s.record_id, s.type, s.occurred_at, s.takes_effect, s.expires_at,
       $jurisdiction,
       CASE WHEN $home_listed THEN s.resident IN (SELECT resident FROM credo_homes) ELSE $home_all END
FROM hits s
WHERE $every OR s.resident IN (SELECT resident FROM credo_only)

-- name: residents_scored
-- How many residents hold a standing (in credo_rescored, unless $every).
SELECT count(DISTINCT resident) FROM standings WHERE $every OR resident IN (SELECT resident FROM credo_rescored)
