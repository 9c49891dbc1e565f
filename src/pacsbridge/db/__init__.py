"""Persistence plumbing. Tables live with their domain (imports/models.py, audit.py, ...).

Flow: ``engine.make_engine(url)`` → ``engine.make_sessions(engine)`` → ``migrate.upgrade(url)``.
"""
