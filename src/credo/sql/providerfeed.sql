-- The providers' change feed (credo.providerfeed): each change of a decision on an action some measure
-- names, found by comparing the decisions the stored standings imply just before and just after a
-- rescoring, set-wise. Inputs: feed_scope(resident) (empty when all), feed_measures_before and
-- feed_measures_after(action, list, grade, effect): the measures of the policy before and after.
-- now is the time of the rescoring. A (resident, action) with no row holds a plain allow.

-- name: scope_all
-- The standings and list hits a rescoring covers: everyone's, or (scope_scoped) those of feed_scope;
-- views, so that a scoped one reads only its residents' rows.
CREATE OR REPLACE TEMP VIEW feed_standings AS SELECT * FROM standings WHERE home;
CREATE OR REPLACE TEMP VIEW feed_hits AS SELECT * FROM standing_hits WHERE home

-- name: scope_scoped
CREATE OR REPLACE TEMP VIEW feed_standings AS
SELECT * FROM standings WHERE home AND resident IN (SELECT resident FROM feed_scope);
CREATE OR REPLACE TEMP VIEW feed_hits AS
SELECT * FROM standing_hits WHERE home AND resident IN (SELECT resident FROM feed_scope)

-- name: before
-- For each (resident, action) some measure applied to before: the decision as last told (at the stored
-- standing's own as_of), the decision the same standing implies at the time of the rescoring (a grace
-- period ended, a list record expired since: a change by time alone), and when such a change happened.
-- A decision is a mask of its effects (feed_measures_*.bit, deny the lowest): comparing two integers
-- per pair is what lets a policy over a whole city be compared at all.
CREATE OR REPLACE TEMP TABLE feed_before AS
WITH s AS (
  SELECT resident, grade, as_of FROM feed_standings
), lists AS (
  SELECT h.resident, h.list,
         bool_or(h.takes_effect <= s.as_of) AS told,
         bool_or(h.takes_effect <= $now AND (h.expires_at IS NULL OR h.expires_at > $now)) AS held,
         min(CASE WHEN h.takes_effect > s.as_of AND h.takes_effect <= $now THEN h.takes_effect END) AS grace_end,
         min(CASE WHEN h.expires_at > s.as_of AND h.expires_at <= $now THEN h.expires_at END) AS expiry
  FROM feed_hits h JOIN s ON s.resident = h.resident
  WHERE h.list IN (SELECT list FROM feed_measures_before)
  GROUP BY h.resident, h.list
), applying AS (
  SELECT l.resident, m.action, m.bit, l.told, l.held, l.grace_end, l.expiry
  FROM lists l JOIN feed_measures_before m ON m.list = l.list
  UNION ALL
  SELECT s.resident, m.action, m.bit, true, true, CAST(NULL AS TIMESTAMP), CAST(NULL AS TIMESTAMP)
  FROM s JOIN feed_measures_before m ON m.grade = s.grade
)
SELECT resident, action, bit_or(CASE WHEN told THEN bit ELSE 0 END) AS told,
       bit_or(CASE WHEN held THEN bit ELSE 0 END) AS held, min(grace_end) AS grace_end, min(expiry) AS expiry
FROM applying
GROUP BY resident, action;
-- Whose stored standing stopped being true by itself before the rescoring, and since when.
CREATE OR REPLACE TEMP TABLE feed_due AS
SELECT resident, changes_at AS due FROM feed_standings WHERE changes_at <= $now

-- name: after
-- The decisions the rescored standings imply, compared with feed_before (a deny is a deny whatever else
-- applies: the mask 1), and each change appended with the next seq (one more than the last in the
-- feed: the caller holds the write transaction), its benefits decoded from the mask and its reason
-- codes gathered for the changed pairs alone. A change the old standing already implied at the time of
-- the rescoring happened by time alone (grace_ended: a list came into force, else expired), at that
-- moment, and any other has the caller's cause.
CREATE OR REPLACE TEMP TABLE feed_changed AS
WITH s AS (
  SELECT resident, grade FROM feed_standings
), lists AS (
  SELECT DISTINCT h.resident, h.list
  FROM feed_hits h JOIN s ON s.resident = h.resident
  WHERE h.takes_effect <= $now AND h.list IN (SELECT list FROM feed_measures_after)
), applying AS (
  SELECT l.resident, m.action, m.bit FROM lists l JOIN feed_measures_after m ON m.list = l.list
  UNION ALL
  SELECT s.resident, m.action, m.bit FROM s JOIN feed_measures_after m ON m.grade = s.grade
), after AS (
  SELECT resident, action, bit_or(bit) AS mask FROM applying GROUP BY resident, action
)
SELECT * FROM (
  SELECT coalesce(a.resident, b.resident) AS resident, coalesce(a.action, b.action) AS action,
         CASE WHEN coalesce(a.mask, 0) & 1 = 1 THEN 1 ELSE coalesce(a.mask, 0) END AS mask,
         CASE WHEN coalesce(b.told, 0) & 1 = 1 THEN 1 ELSE coalesce(b.told, 0) END AS told,
         CASE WHEN coalesce(b.held, 0) & 1 = 1 THEN 1 ELSE coalesce(b.held, 0) END AS held,
         b.grace_end, b.expiry
  FROM after a FULL JOIN feed_before b ON b.resident = a.resident AND b.action = a.action)
WHERE mask <> told;
INSERT INTO feed
WITH s AS (
  SELECT resident, grade FROM feed_standings WHERE resident IN (SELECT resident FROM feed_changed)
), codes AS (
  SELECT DISTINCT h.resident, m.action, 'list:' || m.list AS code
  FROM feed_hits h JOIN feed_measures_after m ON m.list = h.list
  WHERE h.takes_effect <= $now AND h.resident IN (SELECT resident FROM feed_changed)
  UNION
  SELECT s.resident, m.action, 'grade:' || s.grade FROM s JOIN feed_measures_after m ON m.grade = s.grade
), reasons AS (
  SELECT resident, action, list_sort(list(code)) AS reasons FROM codes GROUP BY resident, action
)
SELECT (SELECT coalesce(max(seq), 0) FROM feed) + row_number() OVER (ORDER BY c.resident, c.action),
       c.resident, c.action, CASE WHEN c.mask = 1 THEN 'deny' ELSE 'allow' END,
       list_filter($effects, lambda e, i: i > 1 AND ((c.mask >> (i - 1)) & 1) = 1),
       coalesce(r.reasons, CAST([] AS VARCHAR[])),
       CASE WHEN NOT c.by_time THEN $now
            WHEN c.timed = 'grace_ended' THEN c.grace_end
            ELSE coalesce(c.expiry, d.due, $now) END,
       CASE WHEN c.by_time THEN c.timed ELSE $cause END,
       $policy, $now
FROM (SELECT *, $cause = 'time' OR mask = held AS by_time,
             CASE WHEN grace_end IS NOT NULL AND (expiry IS NULL OR mask = 1) THEN 'grace_ended' ELSE 'expired' END
               AS timed
      FROM feed_changed) c
LEFT JOIN reasons r ON r.resident = c.resident AND r.action = c.action
LEFT JOIN feed_due d ON d.resident = c.resident;
DROP TABLE feed_before;
DROP TABLE feed_changed;
DROP TABLE feed_due;
DROP VIEW feed_standings;
DROP VIEW feed_hits

-- name: page
-- Changes after after on the actions given (NULL: every action), in order.
SELECT seq, resident, action, decision, benefits, reasons, effective_at, cause, policy
FROM feed
WHERE seq > $after AND ($actions IS NULL OR list_contains($actions, action))
ORDER BY seq
LIMIT $limit

-- name: head
SELECT coalesce(max(seq), 0) FROM feed

-- name: snapshot
-- Every (resident, action) on the actions given whose decision now is not a plain allow: the decisions
-- the stored standings (made current first) imply at now.
WITH lists AS (
  SELECT DISTINCT h.resident, h.list FROM (SELECT * FROM standing_hits WHERE home) h
  WHERE h.takes_effect <= $now AND h.list IN (SELECT list FROM feed_measures_after)
), applying AS (
  SELECT l.resident, m.action, m.effect, 'list:' || m.list AS code
  FROM lists l JOIN feed_measures_after m ON m.list = l.list
  UNION ALL
  SELECT s.resident, m.action, m.effect, 'grade:' || s.grade
  FROM (SELECT * FROM standings WHERE home) s JOIN feed_measures_after m ON m.grade = s.grade
)
SELECT resident, action,
       CASE WHEN bool_or(effect = 'deny') THEN 'deny' ELSE 'allow' END AS decision,
       CASE WHEN bool_or(effect = 'deny') THEN CAST([] AS VARCHAR[])
            ELSE coalesce(list_sort(list_distinct(list(effect) FILTER (WHERE effect <> 'deny'))),
                          CAST([] AS VARCHAR[])) END AS benefits,
       list_sort(list_distinct(list(code))) AS reasons
FROM applying
WHERE $actions IS NULL OR list_contains($actions, action)
GROUP BY resident, action
ORDER BY resident, action

-- name: ack
INSERT INTO feed_acks VALUES ($provider, $seq, $now, $principal)

-- name: acked
SELECT coalesce(max(seq), 0) FROM feed_acks WHERE provider = $provider

-- name: providers
-- Every provider with a token (and the actions of its live tokens, NULL among them meaning every action) or an
-- acknowledgment, with its acknowledged position.
SELECT p.provider, p.scopes, p.unscoped, coalesce(a.seq, 0) AS acked, a.acked_at
FROM (SELECT provider, list(actions) FILTER (WHERE actions IS NOT NULL AND live) AS scopes,
             bool_or(actions IS NULL AND live) AS unscoped
      FROM (SELECT provider, actions, id NOT IN (SELECT id FROM token_revocations) AS live
            FROM principals WHERE role = 'provider'
            UNION ALL SELECT DISTINCT provider, NULL, false FROM feed_acks)
      GROUP BY provider) p
LEFT JOIN (SELECT provider, max(seq) AS seq, max(acked_at) AS acked_at FROM feed_acks GROUP BY provider) a
  ON a.provider = p.provider
ORDER BY p.provider

-- name: unacked
-- The changes after after on the actions given, by the time they were recorded: how many, and the seq
-- of the last (for the deadline of each recording time, credo.providerfeed.status).
SELECT recorded_at, count(*) AS changes, max(seq) AS last
FROM feed
WHERE seq > $after AND ($actions IS NULL OR list_contains($actions, action))
GROUP BY recorded_at
ORDER BY recorded_at

-- name: earliest_due
-- The earliest due time of the stored standings after a time (NULL: any), for the server's scheduler.
SELECT min(changes_at) FROM standings WHERE $after IS NULL OR changes_at > $after


-- name: page_times
-- The distinct times the changes of a page took effect: each is shown with its offset once (credo.times).
SELECT DISTINCT effective_at FROM (
  SELECT effective_at FROM feed
  WHERE seq > $after AND ($actions IS NULL OR list_contains($actions, action))
  ORDER BY seq LIMIT $limit)

-- name: page_json
-- A page as the JSON of its changes, made here: at a provider's full speed, building a dict per change
-- in Python would cost more than the query. The resident ID is the key and its check character (ISO
-- 7064 MOD 11-2, as credo.ids computes it), each time as feed_times shows it.
SELECT coalesce(string_agg(row_json, ',' ORDER BY seq), '') AS changes, count(*) AS n, max(seq) AS last
FROM (
  SELECT f.seq, '{"seq":' || f.seq || ',"resident_id":"' || lpad(CAST(f.resident AS VARCHAR), 17, '0')
         || substr('10X98765432', CAST((
         ((f.resident // 10000000000000000) % 10) * 7 + ((f.resident // 1000000000000000) % 10) * 9 +
         ((f.resident // 100000000000000) % 10) * 10 + ((f.resident // 10000000000000) % 10) * 5 +
         ((f.resident // 1000000000000) % 10) * 8 + ((f.resident // 100000000000) % 10) * 4 +
         ((f.resident // 10000000000) % 10) * 2 + ((f.resident // 1000000000) % 10) * 1 +
         ((f.resident // 100000000) % 10) * 6 + ((f.resident // 10000000) % 10) * 3 +
         ((f.resident // 1000000) % 10) * 7 + ((f.resident // 100000) % 10) * 9 +
         ((f.resident // 10000) % 10) * 10 + ((f.resident // 1000) % 10) * 5 +
         ((f.resident // 100) % 10) * 8 + ((f.resident // 10) % 10) * 4 + ((f.resident // 1) % 10) * 2
         ) % 11 AS INTEGER) + 1, 1)
         || '","action":' || to_json(f.action) || ',"decision":"' || f.decision
         || '","benefits":' || to_json(f.benefits) || ',"reasons":' || to_json(f.reasons)
         || ',"effective_at":"' || t.shown || '","cause":"' || f.cause || '","policy":' || to_json(f.policy)
         || '}' AS row_json
  FROM (SELECT * FROM feed
        WHERE seq > $after AND ($actions IS NULL OR list_contains($actions, action))
        ORDER BY seq LIMIT $limit) f
  JOIN feed_times t ON t.effective_at = f.effective_at)
