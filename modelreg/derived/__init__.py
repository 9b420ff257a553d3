"""Derived data in the user's cache directory: per-model state snapshots advanced from each log's tail."""
