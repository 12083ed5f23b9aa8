"""Running connection scripts outside Flask: the sandbox and its jail, legacy hashes, profiles, templates."""
