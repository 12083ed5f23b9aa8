"""The migrating database connection: connections, script runtime, templates, flows."""
