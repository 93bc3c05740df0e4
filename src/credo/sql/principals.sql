-- Tokens (principals), their revocations and the web sessions signed out: rows appended, never
-- updated; a token's state is derived from them.

-- name: insert
INSERT INTO principals (token_hash, role, agency, provider, resident, label, created_at, id, expires_at, actions)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)

-- name: one
SELECT label, role, (SELECT count(*) FROM token_revocations r WHERE r.id = p.id)
FROM principals p WHERE id = ?

-- name: revoke
INSERT INTO token_revocations VALUES (?, ?, ?)

-- name: listing
SELECT p.id, p.label, p.role, p.agency, p.provider, p.resident, p.created_at, p.expires_at,
       r.revoked_at, r.principal, p.actions
FROM principals p LEFT JOIN token_revocations r ON r.id = p.id
ORDER BY p.id

-- name: end_session
INSERT INTO ended_sessions VALUES (?, ?, ?)

-- name: live
-- Every token not revoked (expiry is judged against the clock when one is used).
SELECT token_hash, role, agency, provider, resident, label, id, expires_at, actions FROM principals
WHERE id NOT IN (SELECT id FROM token_revocations)

-- name: live_by_hash
SELECT token_hash, role, agency, provider, resident, label, id, expires_at, actions FROM principals
WHERE id NOT IN (SELECT id FROM token_revocations) AND token_hash = ?

-- name: ended
SELECT session FROM ended_sessions WHERE until > ?
