"""`python -m ivr`: see ivr/cli.py."""

import sys

from ivr.cli import main

sys.exit(main())
