"""The admin dashboard at <issuer>/admin: a first-party client of idp that admits only admins."""
