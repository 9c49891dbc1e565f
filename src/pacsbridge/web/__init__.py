"""HTTP surface: the only package that imports FastAPI.

Flow: ``app.create_app(context)`` → ``api/`` routers (launch, imports, retrievals: thin, parse →
call the domain → shape) and ``pages/`` (Jinja2, Italian by default) → ``errors`` answers JSON
under /api and an Italian page elsewhere, never a traceback.
"""
