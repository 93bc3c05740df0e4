-- A logged decision, as credo.replay reads it back.

-- name: entry
SELECT seq, logged_at, resident, action, decision, policy, detail FROM audit
WHERE event = 'decision' AND decision_id = $decision_id
