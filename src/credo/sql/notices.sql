-- Notices: what a resident is told, derived by comparing standings before and after a change.
-- notices_before(resident, grade), hits_before(resident, list, in_force) are snapshots taken
-- just before the rescoring, of what the stored standings said: a list is in force before if it was
-- at the stored standing's own as_of (so a grace period that ended since is told as a list coming
-- into force); $now is the time of the change.

-- name: snapshot_scoped
CREATE OR REPLACE TEMP TABLE notices_before AS
SELECT resident, grade FROM standings WHERE home AND resident IN (SELECT resident FROM notice_scope);
CREATE OR REPLACE TEMP TABLE hits_before AS
SELECT h.resident, h.list, bool_or(h.takes_effect <= s.as_of) AS in_force
FROM (SELECT * FROM standing_hits WHERE home) h JOIN (SELECT * FROM standings WHERE home) s ON s.resident = h.resident
WHERE h.resident IN (SELECT resident FROM notice_scope) GROUP BY h.resident, h.list

-- name: snapshot_all
CREATE OR REPLACE TEMP TABLE notices_before AS SELECT resident, grade FROM standings WHERE home;
CREATE OR REPLACE TEMP TABLE hits_before AS
SELECT h.resident, h.list, bool_or(h.takes_effect <= s.as_of) AS in_force
FROM (SELECT * FROM standing_hits WHERE home) h JOIN (SELECT * FROM standings WHERE home) s ON s.resident = h.resident GROUP BY h.resident, h.list

-- name: emit
INSERT INTO notices
SELECT s.resident, $now, 'grade.changed', json_object('from', b.grade, 'to', s.grade)
FROM (SELECT * FROM standings WHERE home) s JOIN notices_before b ON b.resident = s.resident
WHERE b.grade IS DISTINCT FROM s.grade;
INSERT INTO notices
SELECT a.resident, $now,
       CASE WHEN a.in_force THEN 'list.in_force' ELSE 'list.pending' END,
       json_object('list', a.list, 'takes_effect', strftime(a.takes_effect, '%Y-%m-%dT%H:%M:%S'))
FROM (SELECT resident, list, bool_or(takes_effect <= $now) AS in_force, min(takes_effect) AS takes_effect
      FROM standing_hits WHERE home AND resident IN (SELECT resident FROM notices_before) GROUP BY resident, list) a
LEFT JOIN hits_before b ON b.resident = a.resident AND b.list = a.list
WHERE b.resident IS NULL OR (a.in_force AND NOT b.in_force);
INSERT INTO notices
SELECT b.resident, $now, 'list.left', json_object('list', b.list)
FROM hits_before b
WHERE NOT EXISTS (SELECT 1 FROM standing_hits h WHERE h.resident = b.resident AND h.list = b.list)

-- name: for_resident
-- A resident's notices, newest first. "record.added" is not stored: it is the ledger row itself,
-- noticed at its batch's time (a copy per record would double the ledger and a large batch's cost).
SELECT created_at, kind, detail FROM (
  SELECT created_at, kind, detail FROM notices WHERE resident = $resident
  UNION ALL
  SELECT b.received_at, 'record.added',
         json_object('record', l.agency || ':' || l.record_id, 'type', l.type,
                     'occurred_at', strftime(l.occurred_at, '%Y-%m-%dT%H:%M:%S'))
  FROM ledger l JOIN batches b ON b.batch = l.batch
  WHERE l.resident = $resident) n
ORDER BY created_at DESC, kind
LIMIT $limit
