"""Deployment settings and the default points policy.

Settings are classes read from ``POINTS_*`` environment variables; ``load_settings`` picks one by
name (``POINTS_ENV``: development, testing, production).
"""

from config.settings import load_settings

__all__ = ["load_settings"]
