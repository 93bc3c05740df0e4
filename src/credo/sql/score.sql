-- Scoring, spec §4 "Semantics, at a time T", as a pipeline of named steps.
-- Written once in DuckDB's dialect; Spark reads the same text through sqlglot.
-- Inputs: clock_in(t), residents_in(resident), ledger_in(agency, record_id, type,
-- resident, occurred_at, resolves), revocations_in(agency, record_id, revoked_at),
-- disputes_in(objection, agency, record_id, opened_at, closed_at) and the policy
-- tables p_types, p_type_lists, p_resolves, p_grades, p_settings.
-- ADD_DURATION(ts, months, days) is calendar addition, the day clamped to the month's end.
--
-- Shape, for speed at city scale: the few records that something besides their type and
-- times can stop from counting (revoked, disputed, resolved) are gathered in `marks`, so
-- `state` reads each ledger row once and joins one small table. The score is then two sums:
-- by resident and capped group (type and year; every uncapped record in group 0), where a cap
-- clamps, and by resident. (Summing everyone's points once and correcting by the capped
-- groups beyond their cap, read from a materialised copy, measured the same and said more.)

-- name: types
-- The policy's types, each with a number (grouping by a number is cheaper than by a code).
SELECT type, points, cap, valid_months, valid_days, row_number() OVER (ORDER BY type) AS type_no
FROM p_types

-- name: revoked
SELECT agency, record_id, min(revoked_at) AS revoked_at
FROM revocations_in
GROUP BY agency, record_id

-- name: disputed
-- Under `disputed: suspend`: the objection open at T, if any, since when an objection has been open
-- (the earliest opening of those open at T), and the next objection step after T (only a past T has
-- one; it is a change to come).
SELECT d.agency, d.record_id,
       max(CASE WHEN d.opened_at <= c.t AND (d.closed_at IS NULL OR d.closed_at > c.t)
                THEN d.objection END) AS objection,
       min(CASE WHEN d.opened_at <= c.t AND (d.closed_at IS NULL OR d.closed_at > c.t)
                THEN d.opened_at END) AS suspended_at,
       min(least(CASE WHEN d.opened_at > c.t THEN d.opened_at END,
                 CASE WHEN d.closed_at > c.t THEN d.closed_at END)) AS next_step
FROM disputes_in d CROSS JOIN clock_in c CROSS JOIN p_settings s
WHERE s.suspend
GROUP BY d.agency, d.record_id

-- name: resolution
-- The earliest record resolving each record: of the same agency (and resident), of a type whose
-- `resolves` lists the resolved record's type, never revoked (a withdrawn resolver resolved nothing,
-- at any T). A later one is a change to come. Ties on time go to the smaller record_id, so both
-- engines name the same resolver.
SELECT agency, record_id, resolved_at, resolved_by
FROM (SELECT l.agency, l.record_id, v.occurred_at AS resolved_at, v.record_id AS resolved_by,
             row_number() OVER (PARTITION BY l.agency, l.record_id
                                ORDER BY v.occurred_at, v.record_id) AS nth
      FROM ledger_in v
      JOIN p_resolves pr ON pr.resolver = v.type
      JOIN (SELECT agency, record_id, resident, type FROM ledger_in
            WHERE type IN (SELECT target FROM p_resolves)) l
        ON l.agency = v.agency AND l.record_id = v.resolves AND l.resident = v.resident AND l.type = pr.target
      LEFT JOIN revoked r ON r.agency = v.agency AND r.record_id = v.record_id
      WHERE v.resolves IS NOT NULL AND r.revoked_at IS NULL) x
WHERE nth = 1

-- name: marks
-- Everything besides its type and times that can stop a record counting, one row per such record.
SELECT agency, record_id, min(revoked_at) AS revoked_at, max(disputed_by) AS disputed_by,
       min(suspended_at) AS suspended_at, min(dispute_step) AS dispute_step, min(resolved_at) AS resolved_at,
       max(resolved_by) AS resolved_by
FROM (SELECT agency, record_id, revoked_at, CAST(NULL AS INTEGER) AS disputed_by,
             CAST(NULL AS TIMESTAMP) AS suspended_at, CAST(NULL AS TIMESTAMP) AS dispute_step,
             CAST(NULL AS TIMESTAMP) AS resolved_at, CAST(NULL AS VARCHAR) AS resolved_by
      FROM revoked
      UNION ALL
      SELECT agency, record_id, CAST(NULL AS TIMESTAMP), objection, suspended_at, next_step,
             CAST(NULL AS TIMESTAMP), CAST(NULL AS VARCHAR)
      FROM disputed
      UNION ALL
      SELECT agency, record_id, CAST(NULL AS TIMESTAMP), CAST(NULL AS INTEGER), CAST(NULL AS TIMESTAMP),
             CAST(NULL AS TIMESTAMP), resolved_at, resolved_by
      FROM resolution) u
GROUP BY agency, record_id

-- name: state
-- Every record with its state at T: the one place where "does it count" is decided.
-- A record that adds nothing shows the first reason: revoked (a withdrawal says the record was wrong,
-- so it holds at every T, before the revocation too: spec §4), not in the policy, not yet occurred;
-- then whichever of suspended, expired and resolved happened first (`stopped_at`; on a tie resolved,
-- then suspended), so a record resolved before it expired says resolved.
SELECT *, CASE WHEN revoked_at IS NOT NULL THEN 'revoked'
               WHEN points IS NULL THEN 'not_in_policy'
               WHEN occurred_at > t THEN 'not_yet'
               WHEN stopped_at IS NULL THEN 'counts'
               WHEN stopped_at = resolved_at THEN 'resolved'
               WHEN stopped_at = suspended_at THEN 'suspended'
               ELSE 'expired' END AS status
FROM (
SELECT l.agency, l.record_id, l.type, l.resident, l.occurred_at, l.points, l.cap, l.type_no, l.expires_at,
       m.revoked_at, m.disputed_by, m.suspended_at, m.dispute_step, m.resolved_at, m.resolved_by, c.t,
       least(m.suspended_at, CASE WHEN l.expires_at <= c.t THEN l.expires_at END,
             CASE WHEN m.resolved_at <= c.t THEN m.resolved_at END) AS stopped_at
FROM (SELECT l.agency, l.record_id, l.type, l.resident, l.occurred_at, p.points, p.cap, p.type_no,
             CASE WHEN p.valid_months IS NOT NULL
                  THEN ADD_DURATION(l.occurred_at, p.valid_months, p.valid_days) END AS expires_at
      FROM ledger_in l LEFT JOIN types p ON p.type = l.type) l
CROSS JOIN clock_in c
LEFT JOIN marks m ON m.agency = l.agency AND m.record_id = l.record_id) x

-- name: hits
-- List memberships caused by counting records, each with the end of its grace period.
SELECT s.resident, tl.list, s.agency, s.record_id, s.type, s.occurred_at, s.expires_at, s.t,
       ADD_DURATION(s.occurred_at, tl.grace_months, tl.grace_days) AS takes_effect
FROM state s JOIN p_type_lists tl ON tl.type = s.type
WHERE s.status = 'counts'

-- name: tallies
-- Each record as one row to add up: its resident, its capped group (type and calendar year; 0 when
-- uncapped or not counting), the points it counts, and the earliest change after T it brings (its
-- occurrence, the expiry or resolution of a counting record, an objection step on a record not
-- revoked; never a revocation, which holds at every T once known).
SELECT resident, cap,
       CASE WHEN status = 'counts' AND cap IS NOT NULL
            THEN type_no * 10000 + year(occurred_at) ELSE 0 END AS capped,
       CASE WHEN status = 'counts' THEN points ELSE 0 END AS points,
       least(CASE WHEN occurred_at > t AND status <> 'revoked' THEN occurred_at END,
             CASE WHEN status = 'counts' THEN expires_at END,
             CASE WHEN status = 'counts' AND resolved_at > t THEN resolved_at END,
             CASE WHEN status <> 'revoked' THEN dispute_step END) AS change_at
FROM state

-- name: scored
-- The score is base + every counting point, each capped group (type and year) clamped to its cap,
-- the whole clamped to the bounds; its grade band is looked up once per distinct score; changes_at
-- is the records' earliest change or a grace period's end. One pass groups the records by resident
-- and capped group (uncapped ones all fall in group 0), a second adds a resident's groups up; a
-- resident with no record joins as zero.
WITH groups AS (
  SELECT resident, capped, max(cap) AS cap, sum(points) AS total, min(change_at) AS change_at
  FROM tallies
  GROUP BY resident, capped
), totals AS (
  SELECT resident,
         sum(CASE WHEN capped = 0 THEN total ELSE greatest(-cap, least(cap, total)) END) AS points,
         min(change_at) AS change_at
  FROM groups
  GROUP BY resident
), scores AS (
  SELECT r.resident, tt.change_at,
         CAST(greatest(ps.lo, least(ps.hi, ps.base + coalesce(tt.points, 0))) AS INTEGER) AS score
  FROM residents_in r CROSS JOIN p_settings ps
  LEFT JOIN totals tt ON tt.resident = r.resident
), bands AS (
  SELECT s.score, g.grade
  FROM (SELECT DISTINCT score FROM scores) s
  JOIN p_grades g ON s.score >= g.lo AND (g.hi IS NULL OR s.score < g.hi)
)
SELECT x.resident, x.score, b.grade, least(x.change_at, h.change_at) AS changes_at
FROM scores x
JOIN bands b ON b.score = x.score
LEFT JOIN (SELECT resident, min(takes_effect) AS change_at FROM hits
           WHERE takes_effect > t GROUP BY resident) h ON h.resident = x.resident

-- name: explained
-- Each record's points after caps: in occurred order within (resident, type, year), a
-- record adds clamp(running total) - clamp(running total before it); the sum telescopes to
-- the capped group total, so the explanation adds up to the score.
SELECT agency, record_id, type, resident, occurred_at, status, expires_at, revoked_at,
       disputed_by, resolved_at, resolved_by,
       CAST(CASE WHEN status <> 'counts' THEN 0
                 WHEN cap IS NULL THEN points
                 ELSE greatest(-cap, least(cap, run)) - greatest(-cap, least(cap, run - points)) END AS BIGINT)
         AS points,
       coalesce(points, 0) AS type_points
FROM (SELECT *, sum(CASE WHEN status = 'counts' THEN points ELSE 0 END) OVER (
                  PARTITION BY resident, type, year(occurred_at), status = 'counts'
                  ORDER BY occurred_at, agency, record_id
                  ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS run
      FROM state) s
