-- Governance reports (issue 9): the impact of a proposed policy (what-if) and outcomes by group
-- (fairness), as SQL over the scoring pipeline's outputs (score.sql). Written once in DuckDB's
-- dialect; kept to what sqlglot translates for Spark (credo.engines.dialect.to_spark).
--
-- capture_* run while one policy is bound to the scoring pipeline and read its steps (scored,
-- hits, state) and its tables (p_measures, p_grades, p_lists). The seam stores each capture
-- stacked with a `side` column: 0 = the policy in force, 1 = the proposed policy. Why stacked: the
-- reports then compare the two policies with joins and conditional sums over one set of
-- relations, and fairness reuses the same relations with side 0 alone. Captured relations:
--   gov_standings(side, resident, score, grade)    gov_held(side, resident, list)
--   gov_measures(side, action, list, grade, effect) gov_grades(side, grade, rank)
--   gov_lists(side, list, kind)                     gov_counting(side, resident, type)
-- Parameters travel as the one-row table params_in(sample, threshold, min_group, driver_share);
-- T is clock_in(t).
-- outcome_types also reads p_types and p_type_lists, so fairness runs while the policy in force is
-- the one bound. Steps (no prefix) are materialised in order by the seam; whatif_* and fairness_*
-- are the reports it reads back.

-- name: capture_standings
SELECT resident, score, grade FROM scored

-- name: capture_held
-- Lists in force at T (past their grace period): the memberships measures act on.
SELECT DISTINCT resident, list FROM hits WHERE takes_effect <= t

-- name: capture_counting
-- Which types each resident has counting records of: what a fairness gap is traced back to.
SELECT DISTINCT resident, type FROM state WHERE status = 'counts'

-- name: capture_measures
SELECT action, list, grade, effect FROM p_measures

-- name: capture_grades
SELECT grade, rank FROM p_grades

-- name: capture_lists
SELECT list, kind FROM p_lists

-- name: denials
-- Per side, each (resident, action) that a measure applying to the resident denies, by a list in
-- force or by the resident's grade (spec §4 "Decision": any applying deny makes the decision deny).
SELECT h.side, h.resident, m.action
FROM gov_held h JOIN gov_measures m ON m.side = h.side AND m.list = h.list
WHERE m.effect = 'deny'
UNION
SELECT s.side, s.resident, m.action
FROM gov_standings s JOIN gov_measures m ON m.side = s.side AND m.grade = s.grade
WHERE m.effect = 'deny'

-- name: people
-- District, sex and age band, read from the resident key (spec §2) for these reports only: no
-- policy rule can see them. Age is whole years at T; a key is region * 10^11 + birth * 10^3 + seq.
SELECT resident,
       lpad(CAST(resident // 100000000000 AS VARCHAR), 6, '0') AS district,
       CASE WHEN resident % 2 = 1 THEN 'male' ELSE 'female' END AS sex,
       CASE WHEN age < 18 THEN '0-17' WHEN age < 30 THEN '18-29' WHEN age < 45 THEN '30-44'
            WHEN age < 60 THEN '45-59' WHEN age < 75 THEN '60-74' ELSE '75+' END AS age_band
FROM (SELECT s.resident,
             (year(c.t) * 10000 + month(c.t) * 100 + day(c.t) - (s.resident // 1000) % 100000000)
               // 10000 AS age
      FROM gov_standings s CROSS JOIN clock_in c
      WHERE s.side = 0) x

-- name: moved
-- Each resident's score and grade under both policies.
SELECT b.resident, p.district, b.grade AS grade_before, a.grade AS grade_after,
       b.score AS score_before, a.score AS score_after
FROM gov_standings b
JOIN gov_standings a ON a.resident = b.resident AND a.side = 1
JOIN people p ON p.resident = b.resident
WHERE b.side = 0

-- name: list_moves
-- Per resident and list held under either policy: held (1) or not (0) before and after.
SELECT h.resident, p.district, h.list,
       max(CASE WHEN h.side = 0 THEN 1 ELSE 0 END) AS held_before,
       max(CASE WHEN h.side = 1 THEN 1 ELSE 0 END) AS held_after
FROM gov_held h JOIN people p ON p.resident = h.resident
GROUP BY h.resident, p.district, h.list

-- name: denial_moves
-- Per resident and action denied under either policy: denied (1) or not (0) before and after.
SELECT d.resident, p.district, d.action,
       max(CASE WHEN d.side = 0 THEN 1 ELSE 0 END) AS denied_before,
       max(CASE WHEN d.side = 1 THEN 1 ELSE 0 END) AS denied_after
FROM denials d JOIN people p ON p.resident = d.resident
GROUP BY d.resident, p.district, d.action

-- name: whatif_grades
-- Grade bands of both policies, for ordering the transition matrix.
SELECT side, grade, rank FROM gov_grades ORDER BY side, rank

-- name: whatif_transitions
SELECT grade_before, grade_after, count(*) AS residents
FROM moved
GROUP BY grade_before, grade_after

-- name: whatif_lists
SELECT list, sum(held_before) AS held_before, sum(held_after) AS held_after,
       sum(CASE WHEN held_after > held_before THEN 1 ELSE 0 END) AS joined,
       sum(CASE WHEN held_after < held_before THEN 1 ELSE 0 END) AS left_list
FROM list_moves
GROUP BY list

-- name: whatif_list_samples
-- The first residents (by key) to join and to leave each list: a sample to look at, not a census.
SELECT list, change, resident
FROM (SELECT list, CASE WHEN held_after > held_before THEN 'joined' ELSE 'left' END AS change, resident,
             row_number() OVER (PARTITION BY list, held_after > held_before ORDER BY resident) AS n
      FROM list_moves
      WHERE held_after <> held_before) x
CROSS JOIN params_in p
WHERE x.n <= p.sample
ORDER BY list, change, resident

-- name: whatif_denials
SELECT action, sum(denied_before) AS denied_before, sum(denied_after) AS denied_after,
       sum(CASE WHEN denied_after > denied_before THEN 1 ELSE 0 END) AS newly_denied,
       sum(CASE WHEN denied_after < denied_before THEN 1 ELSE 0 END) AS no_longer_denied
FROM denial_moves
GROUP BY action

-- name: whatif_benefits
-- Residents who get each benefit of an action: a measure with that effect applies to them, by a list
-- in force or by their grade, and nothing denies them the action.
SELECT b.side, b.action, b.effect, count(*) AS residents
FROM (SELECT h.side, h.resident, m.action, m.effect
      FROM gov_held h JOIN gov_measures m ON m.side = h.side AND m.list = h.list
      WHERE m.effect <> 'deny'
      UNION
      SELECT s.side, s.resident, m.action, m.effect
      FROM gov_standings s JOIN gov_measures m ON m.side = s.side AND m.grade = s.grade
      WHERE m.effect <> 'deny') b
LEFT JOIN denials d ON d.side = b.side AND d.resident = b.resident AND d.action = b.action
WHERE d.resident IS NULL
GROUP BY b.side, b.action, b.effect

-- name: whatif_district_grades
SELECT district, count(*) AS residents,
       sum(CASE WHEN grade_before <> grade_after THEN 1 ELSE 0 END) AS changed_grade,
       sum(CASE WHEN score_after > score_before THEN 1 ELSE 0 END) AS score_up,
       sum(CASE WHEN score_after < score_before THEN 1 ELSE 0 END) AS score_down
FROM moved
GROUP BY district

-- name: whatif_district_lists
SELECT district, list,
       sum(CASE WHEN held_after > held_before THEN 1 ELSE 0 END) AS joined,
       sum(CASE WHEN held_after < held_before THEN 1 ELSE 0 END) AS left_list
FROM list_moves
WHERE held_after <> held_before
GROUP BY district, list

-- name: whatif_district_denials
SELECT district, action, sum(denied_before) AS denied_before, sum(denied_after) AS denied_after
FROM denial_moves
WHERE denied_before + denied_after > 0
GROUP BY district, action

-- name: outcomes
-- Each resident's outcomes under the policy in force: grade, on a black list in force, denied any
-- action.
SELECT p.resident, p.district, p.sex, p.age_band, s.grade,
       CASE WHEN b.resident IS NULL THEN 0 ELSE 1 END AS black,
       CASE WHEN d.resident IS NULL THEN 0 ELSE 1 END AS denied
FROM people p
JOIN gov_standings s ON s.side = 0 AND s.resident = p.resident
LEFT JOIN (SELECT DISTINCT h.resident
           FROM gov_held h JOIN gov_lists l ON l.side = h.side AND l.list = h.list
           WHERE h.side = 0 AND l.kind = 'black') b ON b.resident = p.resident
LEFT JOIN (SELECT DISTINCT resident FROM denials WHERE side = 0) d ON d.resident = p.resident

-- name: groups
-- Residents, black-listed and denied per group of each dimension; the empty grouping is 'all'.
SELECT CASE WHEN grouping(district) = 0 THEN 'district' WHEN grouping(sex) = 0 THEN 'sex'
            WHEN grouping(age_band) = 0 THEN 'age_band' ELSE 'all' END AS dimension,
       coalesce(district, sex, age_band, 'all') AS grp,
       count(*) AS residents, sum(black) AS black, sum(denied) AS denied
FROM outcomes
GROUP BY GROUPING SETS ((district), (sex), (age_band), ())

-- name: favourable
-- The favourable-outcome rate of every group, one row per outcome.
SELECT dimension, grp, residents, 'not_black_listed' AS outcome,
       1.0 - CAST(black AS DOUBLE) / residents AS rate
FROM groups
WHERE residents > 0
UNION ALL
SELECT dimension, grp, residents, 'not_denied' AS outcome,
       1.0 - CAST(denied AS DOUBLE) / residents AS rate
FROM groups
WHERE residents > 0

-- name: best
-- The group with the highest rate in each dimension, among groups of at least min_group residents
-- (ties go to the first group by name).
SELECT dimension, outcome, grp AS best_grp, rate AS best_rate, residents AS best_residents
FROM (SELECT f.dimension, f.outcome, f.grp, f.rate, f.residents,
             row_number() OVER (PARTITION BY f.dimension, f.outcome ORDER BY f.rate DESC, f.grp) AS n
      FROM favourable f CROSS JOIN params_in p
      WHERE f.residents >= p.min_group) x
WHERE n = 1

-- name: judged
-- The four-fifths rule (EEOC, 29 CFR 1607.4(D)): a group's rate below threshold x the best group's
-- rate in its dimension is flagged. Groups under min_group are judged on nothing.
SELECT f.dimension, f.grp, f.residents, f.outcome, f.rate, b.best_grp, b.best_rate, b.best_residents,
       CASE WHEN b.best_rate > 0 THEN f.rate / b.best_rate END AS impact_ratio,
       CASE WHEN f.residents >= p.min_group AND f.rate < p.threshold * b.best_rate THEN 1 ELSE 0 END
         AS flagged
FROM favourable f CROSS JOIN params_in p
LEFT JOIN best b ON b.dimension = f.dimension AND b.outcome = f.outcome

-- name: type_holders
-- Per group, how many residents have a counting record of each type.
SELECT CASE WHEN grouping(p.district) = 0 THEN 'district' WHEN grouping(p.sex) = 0 THEN 'sex'
            ELSE 'age_band' END AS dimension,
       coalesce(p.district, p.sex, p.age_band) AS grp, c.type, count(*) AS holders
FROM gov_counting c JOIN people p ON p.resident = c.resident
WHERE c.side = 0
GROUP BY GROUPING SETS ((p.district, c.type), (p.sex, c.type), (p.age_band, c.type))

-- name: outcome_types
-- The types that can cause each unfavourable outcome: those feeding a black list; those feeding a
-- list some action denies; and, when a grade band is denied an action, every type that takes points.
SELECT DISTINCT 'not_black_listed' AS outcome, tl.type
FROM p_type_lists tl JOIN gov_lists l ON l.side = 0 AND l.list = tl.list
WHERE l.kind = 'black'
UNION
SELECT DISTINCT 'not_denied' AS outcome, tl.type
FROM p_type_lists tl JOIN gov_measures m ON m.side = 0 AND m.list = tl.list
WHERE m.effect = 'deny'
UNION
SELECT DISTINCT 'not_denied' AS outcome, t.type
FROM p_types t CROSS JOIN gov_measures m
WHERE t.points < 0 AND m.side = 0 AND m.grade IS NOT NULL AND m.effect = 'deny'

-- name: fairness_counts
SELECT dimension, grp, residents, black, denied FROM groups

-- name: fairness_groups
SELECT dimension, grp, residents, outcome, rate, best_grp, best_rate, impact_ratio, flagged
FROM judged
ORDER BY dimension, grp, outcome

-- name: fairness_grades
SELECT CASE WHEN grouping(district) = 0 THEN 'district' WHEN grouping(sex) = 0 THEN 'sex'
            WHEN grouping(age_band) = 0 THEN 'age_band' ELSE 'all' END AS dimension,
       coalesce(district, sex, age_band, 'all') AS grp, grade, count(*) AS residents
FROM outcomes
GROUP BY GROUPING SETS ((district, grade), (sex, grade), (age_band, grade), (grade))

-- name: fairness_drivers
-- For each flag, the types that can cause its outcome and are held by a larger share of the flagged
-- group than of the best group, by at least driver_share of the gap between the two groups' rates
-- (smaller differences are noise at city scale); largest difference first, ties by type.
SELECT dimension, grp, outcome, type, group_rate, best_rate, group_rate - best_rate AS difference,
       (group_rate - best_rate) / gap AS share_of_gap
FROM (SELECT j.dimension, j.grp, j.outcome, ot.type, j.best_rate - j.rate AS gap, p.driver_share,
             CAST(coalesce(tg.holders, 0) AS DOUBLE) / j.residents AS group_rate,
             CAST(coalesce(tb.holders, 0) AS DOUBLE) / j.best_residents AS best_rate
      FROM judged j
      CROSS JOIN params_in p
      JOIN outcome_types ot ON ot.outcome = j.outcome
      LEFT JOIN type_holders tg ON tg.dimension = j.dimension AND tg.grp = j.grp AND tg.type = ot.type
      LEFT JOIN type_holders tb ON tb.dimension = j.dimension AND tb.grp = j.best_grp AND tb.type = ot.type
      WHERE j.flagged = 1) x
WHERE group_rate - best_rate >= driver_share * gap AND group_rate > best_rate
ORDER BY dimension, grp, outcome, difference DESC, type
