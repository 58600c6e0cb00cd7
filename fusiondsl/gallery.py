"""``python -m fusiondsl.gallery``, the command golden files name (:mod:`~.cli.gallery`)."""

import sys

from fusiondsl.cli.gallery import main

if __name__ == "__main__":
    sys.exit(main())
