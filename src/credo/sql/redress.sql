-- Redress (credo.redress, spec §8): logged decisions that a withdrawn record made worse for the resident.

-- name: candidates
-- The resident's logged decisions not yet found to need redress for which a record of theirs, occurred by the time the
-- decision was about and held when it was made, was withdrawn after it (its revocation known after the
-- decision's own audit entry: by an agency, or an upheld objection). With each, those records.
SELECT a.seq, a.logged_at, a.principal, a.role, a.action, a.decision, a.decision_id, a.policy, a.detail,
       list({'agency': l.agency, 'record_id': l.record_id, 'revoked_at': r.revoked_at, 'reason': r.reason,
             'by': r.principal, 'objection': r.objection} ORDER BY l.agency, l.record_id) AS withdrawn
FROM audit a
JOIN ledger l ON l.resident = a.resident
JOIN revocations r ON r.agency = l.agency AND r.record_id = l.record_id
LEFT JOIN known w ON w.kind = 'revocation' AND w.agency = r.agency AND w.record_id = r.record_id
LEFT JOIN batches t ON t.batch = l.batch
LEFT JOIN known b ON b.kind = 'batch' AND b.batch = l.batch
WHERE a.event = 'decision' AND a.resident = $resident
  AND l.occurred_at <= coalesce(TRY_CAST(json_extract_string(a.detail, '$.asked.as_of') AS TIMESTAMP), a.logged_at)
  AND CASE WHEN b.seq IS NOT NULL THEN b.seq < a.seq ELSE coalesce(t.received_at, l.occurred_at) <= a.logged_at END
  AND CASE WHEN w.seq IS NOT NULL THEN w.seq > a.seq ELSE r.revoked_at > a.logged_at END
  AND NOT EXISTS (SELECT 1 FROM redress x WHERE x.decision_id = a.decision_id AND x.needed)
GROUP BY ALL
ORDER BY a.seq

-- name: insert
INSERT INTO redress VALUES ($decision_id, $seq, $resident, $principal, $provider, $action, $decided_at,
                            $needed, $said, $holds, $withdrawn, $found_at)

-- name: provider_of
SELECT provider FROM principals WHERE label = $principal AND role = 'provider' LIMIT 1

-- name: listing
-- Items that need redress, oldest first, for one provider and/or resident when given.
SELECT decision_id, seq, resident, principal, provider, action, decided_at, said, holds, withdrawn, found_at
FROM redress
WHERE needed AND ($provider IS NULL OR provider = $provider) AND ($resident IS NULL OR resident = $resident)
ORDER BY found_at, seq

-- name: open_by_provider
-- For the dashboard: the items that need redress by provider (a decision asked by someone other than a
-- provider: by its principal), how many, the oldest and how many are older than $old_days days.
SELECT coalesce(provider, principal) AS told, count(*) AS open, min(found_at) AS oldest,
       count(*) FILTER (WHERE found_at <= $now - to_days(CAST($old_days AS INTEGER))) AS old
FROM redress WHERE needed GROUP BY ALL ORDER BY open DESC, told
