-- The second clock, K (credo.known): when each write became known, and what was in force then.

-- name: note
INSERT INTO known VALUES ($seq, $at, $kind, $batch, $agency, $record_id, $objection, $step, $policy)

-- name: policies_at
-- The policy of each jurisdiction applied and known at K (credo.jurisdictions), oldest first.
SELECT version, document FROM (
  SELECT p.version, p.document, row_number() OVER (PARTITION BY p.jurisdiction ORDER BY p.version DESC) AS n
  FROM policies p
  LEFT JOIN known w ON w.kind = 'policy' AND w.policy = p.version
  WHERE coalesce(w.known_at, p.applied_at) <= $at AND coalesce(w.seq, 0) < $before) WHERE n = 1
ORDER BY version

-- name: policy_at
-- The latest policy applied and known at K (a version with no `known` row: from its applied_at).
SELECT p.version, p.document FROM policies p
LEFT JOIN known w ON w.kind = 'policy' AND w.policy = p.version
WHERE coalesce(w.known_at, p.applied_at) <= $at AND coalesce(w.seq, 0) < $before
ORDER BY p.version DESC LIMIT 1

-- name: last
-- The audit entry of the last write committed (0: none noted), read with a decision index's rows.
SELECT coalesce(max(seq), 0) FROM known
