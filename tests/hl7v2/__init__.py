"""Tests of pacsbridge.hl7v2 (a package, so that module names never clash across tests/)."""
