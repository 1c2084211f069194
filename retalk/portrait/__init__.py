"""Portrait animation: one photo + speech → a talking video with lips, blinks and head motion.

See :func:`retalk.portrait.animate.animate` and ``docs/portrait.md``.
"""
from retalk.portrait.animate import AnimateOptions, AnimateResult, animate

__all__ = ["AnimateOptions", "AnimateResult", "animate"]
