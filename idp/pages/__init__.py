"""Hosted pages: login, sign-up, email verification, password reset, consent and the account page."""
