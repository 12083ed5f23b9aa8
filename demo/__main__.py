"""`python -m demo`: set up the provider, start it and the demo relying party, stop both on Ctrl-C."""

import sys

from demo.launcher import main

sys.exit(main())
