"""pacsbridge: external study import and on-demand FSE retrieval for the hospital PACS."""

__version__ = "0.1.0"
