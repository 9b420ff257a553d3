"""Importers: bring another registry's versions and their history into modelreg (GTO, MLflow)."""
