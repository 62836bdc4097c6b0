"""`python -m ivr`: the command line (ivr/cli/)."""

import sys

from ivr.cli import main

sys.exit(main())
