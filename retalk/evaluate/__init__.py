"""Evaluation: checks and runners that score rendered videos."""
