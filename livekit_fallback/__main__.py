"""``python -m livekit_fallback``: the ``livekit-fallback`` command."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
