"""Signing keys: generation, rotation, revocation and the JWKS."""
