"""The LiveKit-free core: models, validation, sources, resolver and alarms.

Nothing here imports ``livekit``; the SignalWire side uses it too.
"""
