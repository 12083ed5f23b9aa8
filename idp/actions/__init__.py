"""Post-login actions: an admin's Python functions run in the script sandbox after each sign-in."""
