"""``python -m livekit_fallback.cli``: the ``livekit-fallback`` command."""

import sys

from . import main

sys.exit(main())
