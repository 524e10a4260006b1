"""Sending approved records to KwikID in batches, keeping every answer, and the institution's settings."""
