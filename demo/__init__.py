"""The demo behind `make demo`: the provider and a relying party that signs in with it."""
