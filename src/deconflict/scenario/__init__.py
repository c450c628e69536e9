"""Scenarios: files of parties and declarations, loaded through the service."""
