"""How the CLI shows what it does: the ingest progress bar, and the reports of ``credo whatif`` and
``credo fairness`` as tables (``--json`` prints the reports themselves). Kept apart from the
commands, which only parse, call and choose the output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress, ProgressColumn, Task
from rich.table import Table
from rich.text import Text

_PHASES = {"read": (0.0, 0.15), "check": (0.15, 0.5), "store": (0.5, 0.7), "score": (0.7, 1.0)}
"""Share of the bar each phase of one file takes (roughly its share of the time on a large file)."""


class RateColumn(ProgressColumn):
    """Rows of the file per second so far (recomputed at each refresh, so it moves between updates)."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.fields['rows'] / max(task.elapsed or 0.0, 1e-6):>10,.0f} rows/s")


def rows_progress(bar: Progress, path: Path) -> Any:
    """A progress callback for one file: the bar moves through its phases and shows rows and rows/s."""
    task = bar.add_task(f"{path.name}: read", total=1.0, rows=0)

    def tick(phase: str, done: int, total: int) -> None:
        lo, hi = _PHASES.get(phase, (0.0, 1.0))
        bar.update(task, completed=lo + (hi - lo) * (done / total if total else 1.0),
                   description=f"{path.name}: {phase}", rows=done if phase == "read" else total)

    return tick


def print_whatif(out: Console, w: dict[str, Any]) -> None:
    """A what-if report: grade transitions, lists, denials and districts."""
    n = "{:,}".format
    out.print(f"{w['proposed']['policy']} instead of {w['policy']} at {w['as_of']}: {n(w['residents'])} "
              f"residents, {n(w['residents_changed_grade'])} change grade", markup=False, highlight=False)
    for warning in w["proposed"]["warnings"]:
        out.print(f"warn: {warning}", markup=False)
    after = list(w["grades"]["after"])
    matrix = Table("before \\ after", *after, title="grade transitions")
    for g, row in w["matrix"].items():
        matrix.add_row(g, *[n(row[a]) if row.get(a) else "" for a in after])
    lists = Table("list", "kind", "before", "after", "joined", "left", "e.g. joined", "e.g. left",
                  title="lists in force")
    for name, x in w["lists"].items():
        lists.add_row(name, x["kind"], *[n(x[k]) for k in ("before", "after", "joined", "left")],
                      " ".join(x["sample_joined"][:2]), " ".join(x["sample_left"][:2]))
    measures = Table("action", "denied before", "after", "newly", "no longer", "benefits before->after",
                     title="residents denied")
    for action, x in w["measures"].items():
        benefits = ", ".join(f"{e} {n(b['before'])}->{n(b['after'])}" for e, b in x["benefits"].items())
        measures.add_row(action, *[n(x[k]) for k in ("denied_before", "denied_after", "newly_denied",
                                                      "no_longer_denied")], benefits)
    districts = Table("district", "residents", "change grade", "score up", "score down", "list joins",
                      "list leaves", "denials before", "after", title="by district")
    for code, d in w["by_district"].items():
        lists_, denied = d["lists"].values(), d["denied"].values()
        districts.add_row(code, *[n(d[k]) for k in ("residents", "changed_grade", "score_up", "score_down")],
                          n(sum(x["joined"] for x in lists_)), n(sum(x["left"] for x in lists_)),
                          n(sum(x["before"] for x in denied)), n(sum(x["after"] for x in denied)))
    for table in (matrix, lists, measures, districts):
        out.print(table)



def print_fairness(out: Console, f: dict[str, Any], min_group: int) -> None:
    """A fairness report: one table per dimension, then each flag with what drives it."""
    out.print(f"fairness under {f['policy']} at {f['as_of']}: {f['residents']:,} residents; flagged: a rate "
              f"below {f['rule']['threshold']:.0%} of the best group's (groups under {min_group} not judged)",
              markup=False, highlight=False)
    pct = "{:.1%}".format
    for dim, groups in f["dimensions"].items():
        table = Table(dim, "residents", "grades", "black-listed", "denied", "ratio: not listed",
                      "ratio: not denied", "flag", title=f"by {dim.replace('_', ' ')}")
        for g in groups:
            ratios = [g["impact_ratio"].get(o) for o in f["rule"]["outcomes"]]
            table.add_row(g["group"], f"{g['residents']:,}",
                          " ".join(f"{k} {pct(v / g['residents'])}" for k, v in g["grades"].items()),
                          pct(g["black_list_rate"]), pct(g["denial_rate"]),
                          *["-" if r is None else f"{r:.2f}" for r in ratios],
                          "small" if g["small"] else ("FLAG" if g["flagged"] else ""))
        out.print(table)
    for x in f["flags"]:
        drivers = "; ".join(f"{d['type']} {pct(d['group_rate'])} vs {pct(d['best_rate'])}"
                            for d in x["drivers"])
        out.print(f"FLAG {x['dimension']} {x['group']}: {x['outcome']} {pct(x['rate'])} vs "
                  f"{pct(x['best_rate'])} in {x['best_group']} (ratio {x['impact_ratio']:.2f}); "
                  f"driven by: {drivers or '-'}", markup=False, highlight=False)

