"""Script templates for migrating connections: one module per legacy store, each defining both scripts."""
