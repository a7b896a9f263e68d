"""``python -m scripts.bench``: run the benchmark suite (see ``--help``)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
