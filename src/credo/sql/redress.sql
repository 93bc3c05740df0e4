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
-- feed_seq: the feed's head once the withdrawal's own changes are in it, so that a provider reading the
-- feed meets the item beside those changes, and has acknowledged it once it acknowledges that seq.
INSERT INTO redress SELECT $decision_id, $seq, $resident, $principal, $provider, $action, $decided_at, $needed,
                           $said, $holds, $withdrawn, $found_at, coalesce(max(seq), 0) FROM feed

-- name: provider_of
SELECT provider FROM principals WHERE label = $principal AND role = 'provider' LIMIT 1

-- name: listing
-- Items that need redress, oldest first, for one provider and/or resident when given, and those a provider's
-- feed carried from $after to $until (each item is acknowledged once its provider acknowledged its feed_seq).
SELECT r.decision_id, r.seq, r.resident, r.principal, r.provider, r.action, r.decided_at, r.said, r.holds,
       r.withdrawn, r.found_at, r.feed_seq, coalesce(a.acked >= r.feed_seq, false) AS acknowledged
FROM redress r
LEFT JOIN (SELECT provider, max(seq) AS acked FROM feed_acks GROUP BY provider) a ON a.provider = r.provider
WHERE r.needed AND ($provider IS NULL OR r.provider = $provider) AND ($resident IS NULL OR r.resident = $resident)
  AND r.feed_seq > $after AND r.feed_seq <= $until
ORDER BY r.found_at, r.seq

-- name: open_by_provider
-- For the dashboard: the items open (not yet acknowledged on the provider's feed) by provider (a decision
-- asked by someone other than a provider: by its principal, open for good), how many, the oldest and how
-- many are older than $old_days days.
SELECT coalesce(r.provider, r.principal) AS told, count(*) AS open, min(r.found_at) AS oldest,
       count(*) FILTER (WHERE r.found_at <= $now - to_days(CAST($old_days AS INTEGER))) AS old
FROM redress r
LEFT JOIN (SELECT provider, max(seq) AS acked FROM feed_acks GROUP BY provider) a ON a.provider = r.provider
WHERE r.needed AND NOT coalesce(a.acked >= r.feed_seq, false)
GROUP BY ALL ORDER BY open DESC, told
