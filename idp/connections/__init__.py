"""Connections: the user stores users sign in to, native or migrating from a legacy store."""
