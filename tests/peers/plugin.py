"""Placeholder until the peers plugin lands."""
