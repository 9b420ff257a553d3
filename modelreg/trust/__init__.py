"""What modelreg believes of a registry that arrived by git: network settings, egress, history (docs/security.md)."""
