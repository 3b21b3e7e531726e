"""``python -m ckptlens``: the command line."""

import sys

from ckptlens.cli import main

sys.exit(main())
