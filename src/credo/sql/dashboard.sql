-- The operator's dashboard and the resident page (issue 7): aggregates over the stored standings
-- (made current first by Credo.dashboard through Credo.freshen, so none is past its changes_at),
-- the audit log's decisions, the rejects and the policies table. Values travel as $named parameters only.

-- name: score_summary
SELECT count(*) AS residents, min(score) AS lo, max(score) AS hi,
       CAST(round(avg(score)) AS BIGINT) AS mean, CAST(quantile_disc(score, 0.5) AS BIGINT) AS median
FROM standings WHERE home

-- name: score_bins
-- Bins of $width points: [lo, lo + $width).
SELECT CAST(floor(score / $width) AS BIGINT) * $width AS lo, count(*) AS residents
FROM standings WHERE home GROUP BY 1 ORDER BY 1

-- name: grades
SELECT grade, count(*) AS residents FROM standings WHERE home GROUP BY 1

-- name: grades_by_district
SELECT coalesce(r.district, '') AS district, s.grade, count(*) AS residents
FROM (SELECT * FROM standings WHERE home) s JOIN residents r ON r.resident = s.resident
GROUP BY 1, 2 ORDER BY 1, 2

-- name: list_sizes
-- Per list: residents it holds now (a hit past its grace period) and residents only pending on it.
SELECT list, count(*) FILTER (WHERE in_force) AS in_force, count(*) FILTER (WHERE NOT in_force) AS pending
FROM (SELECT resident, list, bool_or(takes_effect <= $now) AS in_force
      FROM standing_hits WHERE home GROUP BY resident, list)
GROUP BY list ORDER BY list

-- name: decisions_per_day
-- Decisions logged in [$since, $until), by city-time day, action and verdict.
SELECT CAST(logged_at AS DATE) AS day, action, decision, count(*) AS decisions
FROM audit WHERE event = 'decision' AND logged_at >= $since AND logged_at < $until
GROUP BY 1, 2, 3 ORDER BY 1, 2, 3

-- name: rejects_by_reason
SELECT agency, reason, count(*) AS n FROM rejects GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2

-- name: policy_applied
SELECT applied_at, applied_by FROM policies WHERE version = $version

-- name: resident_accesses
-- The latest entries about one resident, newest first (the API pages oldest first).
SELECT seq, logged_at, principal, role, event, action, decision, decision_id, purpose, policy
FROM audit WHERE resident = $resident ORDER BY seq DESC LIMIT $limit

-- name: resident_access_count
SELECT count(*) AS n FROM audit WHERE resident = $resident
