"""``python -m inceptionzoo.cli``: the ``inceptionzoo`` command."""
import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
