"""Users, password hashing, SSO sessions and the hosted pages."""
