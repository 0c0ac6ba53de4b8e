"""Certificates: codes, signed tokens, QR symbols and printable PDFs (pure Python, no Flask)."""
