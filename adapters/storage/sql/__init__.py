"""SQL storage (SQLite or PostgreSQL) for orders, fills, trades, positions, equity, signals, runs.

Wiring: ``upgrade_to_head(url)`` (:mod:`.migrations`), then ``make_engine(url)`` →
``make_session_factory(engine)`` → ``SqlUnitOfWork(factory, run_id)`` (:mod:`.unit_of_work`),
one unit of work per transaction of one run.
"""
