-- Scoring, spec §4 "Semantics, at a time T", as a pipeline of named steps.
-- Written once in DuckDB's dialect; Spark reads the same text through sqlglot.
-- Inputs: clock_in(t), residents_in(resident), ledger_in(agency, record_id, type,
-- resident, occurred_at, resolves), revocations_in(agency, record_id, revoked_at),
-- disputes_in(objection, agency, record_id, opened_at, closed_at) and the policy
-- tables p_types, p_type_lists, p_resolves, p_grades, p_settings.
-- ADD_DURATION(ts, months, days) is calendar addition, the day clamped to the month's end.

-- name: revoked
SELECT agency, record_id, min(revoked_at) AS revoked_at
FROM revocations_in
GROUP BY agency, record_id

-- name: disputed
SELECT d.agency, d.record_id, max(d.objection) AS objection
FROM disputes_in d CROSS JOIN clock_in c CROSS JOIN p_settings s
WHERE s.suspend AND d.opened_at <= c.t AND (d.closed_at IS NULL OR d.closed_at > c.t)
GROUP BY d.agency, d.record_id

-- name: resolvers
-- Records that resolve another, unless revoked by T. Future ones matter for changes_at.
SELECT l.agency, l.resolves AS target_id, l.resident, l.type AS resolver_type,
       l.record_id AS resolver_id, l.occurred_at AS resolved_at
FROM ledger_in l CROSS JOIN clock_in c
LEFT JOIN revoked r ON r.agency = l.agency AND r.record_id = l.record_id
WHERE l.resolves IS NOT NULL AND (r.revoked_at IS NULL OR r.revoked_at > c.t)

-- name: resolution
SELECT v.agency, v.target_id AS record_id, min(v.resolved_at) AS resolved_at,
       min_by(v.resolver_id, v.resolved_at) AS resolved_by
FROM resolvers v
JOIN ledger_in l ON l.agency = v.agency AND l.record_id = v.target_id AND l.resident = v.resident
JOIN p_resolves pr ON pr.resolver = v.resolver_type AND pr.target = l.type
GROUP BY v.agency, v.target_id

-- name: state
-- Every record with its state at T: the one place where "does it count" is decided.
SELECT l.agency, l.record_id, l.type, l.resident, l.occurred_at, p.points, p.cap,
       CASE WHEN p.valid_months IS NOT NULL
            THEN ADD_DURATION(l.occurred_at, p.valid_months, p.valid_days) END AS expires_at,
       r.revoked_at, d.objection AS disputed_by, s.resolved_at, s.resolved_by, c.t,
       CASE WHEN r.revoked_at <= c.t THEN 'revoked'
            WHEN p.points IS NULL THEN 'not_in_policy'
            WHEN l.occurred_at > c.t THEN 'not_yet'
            WHEN d.objection IS NOT NULL THEN 'suspended'
            WHEN p.valid_months IS NOT NULL
                 AND ADD_DURATION(l.occurred_at, p.valid_months, p.valid_days) <= c.t THEN 'expired'
            WHEN s.resolved_at <= c.t THEN 'resolved'
            ELSE 'counts' END AS status
FROM ledger_in l CROSS JOIN clock_in c
LEFT JOIN p_types p ON p.type = l.type
LEFT JOIN revoked r ON r.agency = l.agency AND r.record_id = l.record_id
LEFT JOIN disputed d ON d.agency = l.agency AND d.record_id = l.record_id
LEFT JOIN resolution s ON s.agency = l.agency AND s.record_id = l.record_id

-- name: hits
-- List memberships caused by counting records, each with the end of its grace period.
SELECT s.resident, tl.list, s.agency, s.record_id, s.type, s.occurred_at, s.expires_at, s.t,
       ADD_DURATION(s.occurred_at, tl.grace_months, tl.grace_days) AS takes_effect
FROM state s JOIN p_type_lists tl ON tl.type = s.type
WHERE s.status = 'counts'

-- name: group_points
-- Points per (resident, type, calendar year), limited to [-cap, +cap] when capped.
SELECT resident,
       sum(CASE WHEN cap IS NULL THEN total ELSE greatest(-cap, least(cap, total)) END) AS points
FROM (SELECT resident, type, year(occurred_at) AS yr, sum(points) AS total, max(cap) AS cap
      FROM state WHERE status = 'counts'
      GROUP BY resident, type, year(occurred_at)) g
GROUP BY resident

-- name: next_change
-- The earliest instant after T at which a resident's standing changes by itself.
SELECT resident, min(change_at) AS changes_at
FROM (SELECT resident,
             least(CASE WHEN occurred_at > t THEN occurred_at END,
                   CASE WHEN status = 'counts' AND expires_at > t THEN expires_at END,
                   CASE WHEN status = 'counts' AND resolved_at > t THEN resolved_at END,
                   CASE WHEN revoked_at > t THEN revoked_at END) AS change_at
      FROM state
      UNION ALL
      SELECT resident, takes_effect AS change_at FROM hits WHERE takes_effect > t) x
WHERE change_at IS NOT NULL
GROUP BY resident

-- name: scored
SELECT x.resident, x.score, g.grade, n.changes_at
FROM (SELECT r.resident,
             CAST(greatest(ps.lo, least(ps.hi, ps.base + coalesce(gp.points, 0))) AS INTEGER) AS score
      FROM residents_in r CROSS JOIN p_settings ps
      LEFT JOIN group_points gp ON gp.resident = r.resident) x
JOIN p_grades g ON x.score >= g.lo AND (g.hi IS NULL OR x.score < g.hi)
LEFT JOIN next_change n ON n.resident = x.resident

-- name: explained
-- Each record's points after caps: in occurred order within (resident, type, year), a
-- record adds clamp(running total) - clamp(running total before it); the sum telescopes to
-- the capped group total, so the explanation adds up to the score.
SELECT agency, record_id, type, resident, occurred_at, status, expires_at, revoked_at,
       disputed_by, resolved_at, resolved_by,
       CASE WHEN status <> 'counts' THEN 0
            WHEN cap IS NULL THEN points
            ELSE greatest(-cap, least(cap, run)) - greatest(-cap, least(cap, run - points)) END AS points,
       coalesce(points, 0) AS type_points
FROM (SELECT *, sum(CASE WHEN status = 'counts' THEN points ELSE 0 END) OVER (
                  PARTITION BY resident, type, year(occurred_at), status = 'counts'
                  ORDER BY occurred_at, agency, record_id
                  ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS run
      FROM state) s
