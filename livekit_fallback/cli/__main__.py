"""``python -m livekit_fallback.cli``: the ``livekit-fallback`` command."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
