"""Scheduled jobs: declared as data (``schedule.JOBS``), claimed per (job, period), run by one process."""
