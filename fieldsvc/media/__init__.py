"""Resumable, content-addressed media uploads (DESIGN §4.2)."""
