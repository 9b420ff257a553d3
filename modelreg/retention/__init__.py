"""Retention: the ``policy.retention`` rule, pruning by it, purging archived content, and statistics."""
