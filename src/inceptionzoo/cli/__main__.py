"""``python -m inceptionzoo.cli``: the ``inceptionzoo`` command."""
import sys

from . import main

sys.exit(main())
