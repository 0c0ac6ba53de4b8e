"""Offline sync: push merge rules and opaque pull cursors (pure parts in merge.py, cursor.py)."""
