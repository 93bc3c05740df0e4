"""Execution seams: one per engine, each running the same scoring SQL.

``duckdb`` is the embedded default; ``spark`` runs the identical pipeline on
Spark SQL for a ledger kept as Parquet. Every dialect difference lives in
``credo.engines.dialect``.
"""
