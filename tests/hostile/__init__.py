"""Hostile-registry corpus: what a pull request can put in .modelreg/, attacked through the CLI."""
