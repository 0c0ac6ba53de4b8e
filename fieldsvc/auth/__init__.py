"""Accounts, roles, API tokens and login rate limits."""
