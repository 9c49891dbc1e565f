"""The MLLP listener for these tests, until tests/peers/plugin.py provides it suite-wide.

Without the suite's root conftest (``--noconftest``), load this file as a plugin:
``PYTHONPATH=tests python -m pytest tests/hl7v2 --noconftest -p hl7v2.conftest``.
"""

from peers.mllp import mllp_listener  # noqa: F401
