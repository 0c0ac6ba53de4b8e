"""Append-only audit events and the version history of edited entities."""
