"""Stage lifecycle: the causal order of stage moves, the rollback (undo) stack, and stage expectations."""
