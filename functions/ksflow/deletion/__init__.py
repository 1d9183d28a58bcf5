"""Deleting folders and documents with everything under them, across the knowledge base, ingestion and runs."""
