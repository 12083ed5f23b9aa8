"""The management API: Auth0's Management API v2 shapes under /api/v2/ (users, for now)."""
