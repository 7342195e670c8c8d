"""``python -m lesionseg``: the same as the ``lesionseg`` command."""

import sys

from lesionseg.cli import main

if __name__ == "__main__":
    sys.exit(main())
