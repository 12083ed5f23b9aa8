"""Users: their records, passwords, SSO sessions and sign-in throttling."""
