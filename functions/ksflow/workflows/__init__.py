"""Workflow definitions, runs and their callbacks."""
