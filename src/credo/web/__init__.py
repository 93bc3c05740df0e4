"""The web pages of ``credo serve``: the operator's dashboard, the resident's page, the what-if.

Layout: ``routes`` reads through the same service calls as the API (audited the same way)
and answers HTML; ``session`` turns a bearer token into a signed session cookie and guards
forms; ``layout``, ``dashboard``, ``resident`` and ``whatif`` render pages from plain data;
``charts`` draws SVG on the server; ``html`` builds markup with escaping by default;
``static/credo.css`` is the one stylesheet. No page loads anything from another origin,
and no page needs script.
"""
