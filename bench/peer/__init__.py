"""idp side by side with node-oidc-provider: `make bench-peer` (`python -m bench.peer --help`)."""
