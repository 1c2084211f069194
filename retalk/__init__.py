"""retalk: audio-driven talking-head video (dubbing, portrait animation, evaluation)."""
from __future__ import annotations

__version__ = "0.1.0"

from retalk.errors import RetalkError

__all__ = ["RetalkError", "__version__"]
