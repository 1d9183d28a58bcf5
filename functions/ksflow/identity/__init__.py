"""Tenants, users, roles and API keys."""
