"""The bottom layer: settings, Celery, encryption at rest, logging and the error vocabulary; no app code."""

from .celery import app as celery_app

__all__ = ("celery_app",)
