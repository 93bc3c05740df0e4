"""Credo: a city-scale resident credit platform.

Layers (imports run downward only):
fronts  cli, api, web            parse, call the library, render
domain  ids, policy, ingest, scoring, standing, decisions, objections, audit, governance
base    store, engines, times, settings, errors
apart   synth (writes feed files only)
"""

__version__ = "0.1.0"
