"""The operator CLI: `idp init`, `idp serve`, `idp users`, `idp clients`, `idp connections`, `idp keys`."""
