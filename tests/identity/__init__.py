"""Tests of pacsbridge.identity (a package, so that module names never clash across tests/)."""
