-- Objections, spec §5: every step is a row of objection_events; an objection's state is
-- derived from its steps (opened, then at most one of upheld / rejected).

-- name: state
SELECT o.objection, o.resident, o.agency, o.record_id, o.text AS reason, o.principal AS opened_by,
       o.happened_at AS opened_at, c.step AS outcome, c.text AS answer, c.principal AS resolved_by,
       c.happened_at AS resolved_at
FROM objection_events o
LEFT JOIN objection_events c ON c.objection = o.objection AND c.step IN ('upheld', 'rejected')
WHERE o.step = 'opened'
  AND ($objection IS NULL OR o.objection = $objection)
  AND ($resident IS NULL OR o.resident = $resident)
  AND ($agency IS NULL OR o.agency = $agency)
  AND ($record_id IS NULL OR o.record_id = $record_id)
ORDER BY o.objection

-- name: step
INSERT INTO objection_events VALUES ($objection, $step, $resident, $agency, $record_id, $text, $principal, $now)

-- name: record_of
SELECT agency, record_id FROM objection_events WHERE objection = $objection AND step = 'opened'
