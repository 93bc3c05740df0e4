"""The web pages' pieces without a browser: escaping, session cookies and form tokens, chart scales.

Table-driven where it can be; the browser tests (``test_web.py``) cover the pages whole.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from credo.dashboard import bin_width
from credo.principals import Directory, Principal, Token
from credo.web import charts
from credo.web.html import Html, el, esc
from credo.web.session import Sessions, token_hash

NOW = datetime(2024, 9, 1, 10)
ESCAPED = [
    ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
    ('"quoted" & \'single\'', "&quot;quoted&quot; &amp; &#x27;single&#x27;"),
    (Html("<b>kept</b>"), "<b>kept</b>"),
    (["a", Html("<i>b</i>"), None, 3], "a<i>b</i>3"),
    (None, ""),
]


@pytest.mark.parametrize(("given", "shown"), ESCAPED)
def test_text_is_escaped_and_markup_kept(given: object, shown: str) -> None:
    assert esc(given) == shown  # type: ignore[arg-type]


def test_attributes_are_escaped_named_and_dropped() -> None:
    got = el("a", "x", href='/r?a=1&b="2"', class_="c", aria_label="L", hidden=True, title=None, data_n=3)
    assert got == '<a href="/r?a=1&amp;b=&quot;2&quot;" class="c" aria-label="L" hidden data-n="3">x</a>'
    assert el("input", name="n", required=False) == '<input name="n">'


def _keeper() -> Sessions:
    return Sessions(b"k" * 32, lifetime=60)


def test_a_session_cookie_names_the_token_without_holding_it() -> None:
    keeper = _keeper()
    cookie = keeper.issue("credo_secret", now=1000)
    assert "credo_secret" not in cookie
    found = keeper.read(cookie, now=1001)
    assert found is not None and found.token_hash == token_hash("credo_secret")
    token = Token(1, Principal("resident:x", "resident", resident=110112198706121), None)
    directory = Directory([(token_hash("credo_secret"), token)])
    who = keeper.principal(found, directory, lambda: NOW)
    assert who is not None and (who.role, who.resident) == ("resident", 110112198706121)
    assert keeper.principal(found, Directory([]), lambda: NOW) is None  # the token is gone: so is the session


@pytest.mark.parametrize("spoil", [
    lambda c: c[:-1] + ("0" if c[-1] != "0" else "1"),  # the signature altered
    lambda c: "f" + c[1:],  # the token hash altered
    lambda c: c.rsplit(".", 2)[0] + ".9999999999." + c.rsplit(".", 1)[1],  # the expiry pushed back
    lambda c: "",
    lambda c: "a.b.c",
])
def test_an_altered_cookie_is_no_session(spoil: object) -> None:
    keeper = _keeper()
    assert keeper.read(spoil(keeper.issue("t", now=1000)), now=1001) is None  # type: ignore[operator]


def test_sessions_expire_and_keys_differ() -> None:
    keeper = _keeper()
    cookie = keeper.issue("t", now=1000)
    assert keeper.read(cookie, now=1059) is not None and keeper.read(cookie, now=1061) is None
    assert Sessions(b"o" * 32).read(cookie, now=1001) is None


def test_form_tokens_belong_to_their_session() -> None:
    keeper = _keeper()
    one, two = (keeper.read(keeper.issue("t", now=1000), now=1001) for _ in range(2))
    assert one is not None and two is not None
    assert keeper.valid_form(one, keeper.form_token(one))
    assert not keeper.valid_form(one, keeper.form_token(two)) and not keeper.valid_form(one, None)
    nonce = keeper.signin_nonce()
    assert keeper.valid_signin(nonce, keeper.signin_token(nonce))
    assert not keeper.valid_signin(nonce, "x") and not keeper.valid_signin(None, keeper.signin_token(nonce))


@pytest.mark.parametrize(("lo", "hi", "width"),
                         [(950, 1030, 5), (0, 2000, 100), (1000, 1000, 1), (503, 1157, 20)])
def test_histogram_bins_are_nice_and_few(lo: int, hi: int, width: int) -> None:
    assert bin_width(lo, hi) == width


@pytest.mark.parametrize(("value", "top"), [(0, 1), (1, 1), (7, 10), (11, 20), (250, 500), (80_272, 100_000)])
def test_axis_tops_are_round(value: int, top: int) -> None:
    assert charts.nice_ceiling(value) == top


def test_grade_colours_span_the_palette() -> None:
    assert [charts.grade_class(i, 4) for i in range(4)] == ["g0", "g2", "g5", "g7"]
    assert charts.grade_class(0, 1) == "g0"


def test_charts_are_labelled_images_with_their_numbers() -> None:
    svg = charts.histogram("h", [charts.Bin(950, 954, 7), charts.Bin(955, 959, 0)], [("A", 1000), ("B", 900)],
                           title="Scores", desc="per bin")
    assert svg.count('role="img"') == 2  # the wide drawing and the narrow one
    assert 'aria-labelledby="h-t h-d"' in svg and "score 950–954 (grade B): 7 residents" in svg
    assert "http" not in svg
