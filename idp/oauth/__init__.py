"""The authorization server: clients, grants, tokens, discovery and userinfo."""
