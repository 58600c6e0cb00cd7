"""``python -m fusiondsl.cli``: the ``fusiondsl`` command."""

import sys

from fusiondsl.cli.main import main

sys.exit(main())
