"""`python -m lstmkit` runs the `lstmkit` command."""
import sys

from .cli.main import main

sys.exit(main())
