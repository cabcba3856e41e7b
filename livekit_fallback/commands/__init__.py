"""Subcommands of the ``livekit-fallback`` command, one module each.

Each module has ``register(subparsers)``, which adds its parser(s) and sets
``handler`` (an ``async def (args) -> int``) as a parser default.
"""
