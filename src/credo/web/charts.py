"""Charts drawn on the server as inline SVG: no script, no font or library from the network.

Colours come from CSS classes (``g0``… for grades from best to worst, ``allow``,
``deny``, ``pending``), so the stylesheet keeps them legible and consistent. Each
chart is an image with a title and a description for screen readers, each mark
carries a ``<title>`` with its exact number (a tooltip on hover), and every page
shows the same numbers in a table next to the chart.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from credo.web.html import Html, el, number


def nice_ceiling(value: float) -> int:
    """The smallest of 1, 2, 5 × 10^k at or above ``value`` (an axis' top)."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return int(step * power)
    return int(10 * power)


def grade_class(index: int, count: int) -> str:
    """The colour class of the ``index``-th grade of ``count`` (best first): the eight-step
    palette ``g0`` (best) to ``g7`` (worst) spread over however many grades the policy has."""
    if count <= 1:
        return "g0"
    return f"g{round(index * 7 / (count - 1))}"


def ticks(top: int, count: int = 4) -> list[int]:
    step = max(1, top // count)
    return list(range(0, top + 1, step))


def _svg(key: str, f: Frame, title: str, desc: str, *children: Html) -> Html:
    return el("svg", el("title", title, id=f"{key}-t"), el("desc", desc, id=f"{key}-d"), *children,
              viewBox=f"0 0 {f.width} {f.height}", role="img", aria_labelledby=f"{key}-t {key}-d",
              class_="chart", focusable="false")


def _y_axis(top: int, y0: float, y1: float, f: Frame) -> list[Html]:
    out = []
    for t in ticks(top):
        y = y0 - (y0 - y1) * t / top
        out.append(el("line", x1=f.left, x2=f.width - f.right, y1=f"{y:.1f}", y2=f"{y:.1f}", class_="grid"))
        out.append(el("text", number(t), x=f.left - 6, y=f"{y + f.font / 3:.1f}", text_anchor="end",
                      font_size=f.font))
    return out


@dataclass(frozen=True)
class Frame:
    """A chart's drawing box in its own units, and the text size there. Two frames per chart:
    a wide one for screens, a narrow one for phones (CSS shows one), so the text stays about
    the same size on both instead of shrinking with the drawing."""

    width: int
    height: int
    left: int
    top: int
    bottom: int
    font: int
    labels: int
    """How many x-axis labels fit."""

    right: int = 12

    def text_width(self, text: str) -> float:
        return len(text) * self.font * 0.68


WIDE = Frame(1000, 300, 52, 44, 34, 13, 10)
NARROW = Frame(360, 260, 40, 44, 30, 11, 4)


def _room_for(f: Frame, top: int) -> Frame:
    """The frame with a left margin wide enough for the y axis' longest label."""
    return replace(f, left=max(f.left, round(len(number(top)) * f.font * 0.62) + 12))


def responsive(draw: Callable[[Frame, str], Html], key: str) -> Html:
    """The chart drawn twice: the wide drawing for screens, the narrow one for phones."""
    return el("div", el("div", draw(WIDE, key), class_="chart-wide"),
              el("div", draw(NARROW, f"{key}-m"), class_="chart-narrow"), class_="chart-box")


@dataclass(frozen=True)
class Bin:
    lo: int
    hi: int
    count: int


def histogram(key: str, bins: Sequence[Bin], bands: Sequence[tuple[str, int]], *, title: str,
              desc: str) -> Html:
    """Residents per score bin, each bar coloured by the grade its lowest score falls in, with a
    dashed line where each grade band begins. ``bands`` are (grade, min), highest first."""
    if not bins:
        return el("p", "No standings yet.", class_="empty")

    def draw(f: Frame, k: str) -> Html:
        lo, hi = bins[0].lo, bins[-1].hi + 1
        top = nice_ceiling(max(b.count for b in bins))
        f = _room_for(f, top)
        y0, y1 = f.height - f.bottom, f.top

        def sx(score: float) -> float:
            return f.left + (f.width - f.left - f.right) * (score - lo) / (hi - lo)

        def grade_index(score: int) -> int:
            return next((i for i, (_, m) in enumerate(bands) if m <= score), len(bands) - 1)

        marks: list[Html] = _y_axis(top, y0, y1, f)
        for b in bins:
            h = (y0 - y1) * b.count / top
            x, w = sx(b.lo), max(1.0, sx(b.hi + 1) - sx(b.lo) - 1)
            grade = bands[grade_index(b.lo)][0] if bands else ""
            span = f"{b.lo}" if b.lo == b.hi else f"{b.lo}–{b.hi}"
            marks.append(el("rect", el("title", f"score {span} (grade {grade}): {number(b.count)} residents"),
                            x=f"{x:.1f}", y=f"{y0 - h:.1f}", width=f"{w:.1f}", height=f"{h:.1f}",
                            class_=grade_class(grade_index(b.lo), len(bands)), data_lo=b.lo,
                            data_count=b.count))
        every = max(1, math.ceil(len(bins) / f.labels))
        for i, b in enumerate(bins):
            if i % every == 0:
                marks.append(el("text", b.lo, x=f"{sx(b.lo):.1f}", y=y0 + f.font + 6, font_size=f.font))
        row_ends = [-1e9, -1e9]  # two rows of labels; a label that fits in neither is left out
        for grade, minimum in reversed(bands):
            if lo < minimum < hi:
                x = sx(minimum)
                label = f"{grade} ≥ {minimum}"
                wide = f.text_width(label)
                flip = x + 3 + wide > f.width - f.right  # no room on the right: left of its line
                start = x - 3 - wide if flip else x + 3
                row = next((r for r, end in enumerate(row_ends) if start > end + 6), None)
                marks.append(el("line", el("title", label), x1=f"{x:.1f}", x2=f"{x:.1f}", y1=y1 - 6 - f.font,
                                y2=y0, class_="band"))
                if row is not None:
                    row_ends[row] = start + wide
                    marks.append(el("text", label, x=f"{x - 3 if flip else x + 3:.1f}",
                                    y=y1 - 6 - row * (f.font + 4), class_="band-label", font_size=f.font,
                                    text_anchor="end" if flip else None))
        marks.append(el("line", x1=f.left, x2=f.width - f.right, y1=y0, y2=y0, class_="axis"))
        return _svg(k, f, title, desc, *marks)

    return responsive(draw, key)


@dataclass(frozen=True)
class Segment:
    value: int
    cls: str
    name: str


def bars(key: str, rows: Sequence[tuple[str, Sequence[Segment]]], *, title: str, scale: int | None = None,
         percent: bool = False, total_label: str = "") -> Html:
    """Horizontal stacked bars, one per row: the label and total are text, the bar an SVG strip.

    ``percent`` stretches every bar to the full width (shares within the row); otherwise
    bars share one scale (``scale`` or the largest row's total). Text stays text, so it
    reads at any width; only the strip scales.
    """
    top = scale or max((sum(s.value for s in segs) for _, segs in rows), default=0) or 1
    items = []
    for label, segs in rows:
        total = sum(s.value for s in segs)
        full = total if percent and total else top
        x = 0.0
        rects = []
        spoken = []
        for s in segs:
            w = 1000 * s.value / full if full else 0
            if s.value:
                rects.append(el("rect", el("title", f"{label} · {s.name}: {number(s.value)}"),
                                x=f"{x:.2f}", y=0, width=f"{w:.2f}", height=16, class_=s.cls))
            spoken.append(f"{s.name} {number(s.value)}")
            x += w
        strip = el("svg", rects, viewBox="0 0 1000 16", preserveAspectRatio="none", class_="strip",
                   role="img", aria_label=f"{label}: {', '.join(spoken)}", focusable="false")
        items.append(el("li", el("span", label, class_="bar-label"), strip,
                        el("span", number(total), total_label, class_="bar-value"), data_label=label,
                        data_total=total))
    return el("ul", items, class_="bars", aria_label=title, id=key)


def legend(entries: Sequence[tuple[str, str]]) -> Html:
    """Swatches naming the classes a chart uses: (class, name)."""
    return el("ul", [el("li", el("span", class_=f"swatch {cls}", aria_hidden="true"), name)
                     for cls, name in entries], class_="legend")


@dataclass(frozen=True)
class Day:
    day: str
    allow: int
    deny: int


def daily(key: str, days: Sequence[Day], *, title: str, desc: str) -> Html:
    """Decisions per day as stacked columns: allowed below, denied on top."""
    if not days:
        return el("p", "No days.", class_="empty")

    def draw(f: Frame, k: str) -> Html:
        height = f.height * 3 // 5
        top = nice_ceiling(max(d.allow + d.deny for d in days))
        f = _room_for(f, top)
        y0, y1 = height - f.bottom, 12
        step = (f.width - f.left - f.right) / len(days)
        marks: list[Html] = _y_axis(top, y0, y1, f)
        for i, d in enumerate(days):
            x, w = f.left + i * step + 1, max(1.0, step - 2)
            h_allow = (y0 - y1) * d.allow / top
            h_deny = (y0 - y1) * d.deny / top
            tip = f"{d.day}: {number(d.allow + d.deny)} decisions, {number(d.deny)} denied"
            if d.allow:
                marks.append(el("rect", el("title", tip), x=f"{x:.1f}", y=f"{y0 - h_allow:.1f}",
                                width=f"{w:.1f}", height=f"{h_allow:.1f}", class_="allow"))
            if d.deny:
                marks.append(el("rect", el("title", tip), x=f"{x:.1f}", y=f"{y0 - h_allow - h_deny:.1f}",
                                width=f"{w:.1f}", height=f"{h_deny:.1f}", class_="deny"))
        for i in sorted({0, len(days) // 2, len(days) - 1}):
            anchor = "start" if i == 0 else "end" if i == len(days) - 1 else "middle"
            x = f.left + i * step + (0 if anchor == "start" else step if anchor == "end" else step / 2)
            marks.append(el("text", days[i].day[5:], x=f"{x:.1f}", y=y0 + f.font + 6, text_anchor=anchor,
                            font_size=f.font))
        marks.append(el("line", x1=f.left, x2=f.width - f.right, y1=y0, y2=y0, class_="axis"))
        return _svg(k, Frame(f.width, height, f.left, y1, f.bottom, f.font, f.labels), title, desc, *marks)

    return responsive(draw, key)
