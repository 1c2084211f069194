"""SadTalker (photo + speech → talking head) with its released networks: ``retalk animate --engine sadtalker``.

Importing this package imports nothing heavy (no torch). Preprocessing, rendering, paste-back and the
engine: :mod:`~retalk.sadtalker.files` (the files a run needs), :mod:`~retalk.sadtalker.preprocess`
(crop geometry), :mod:`~retalk.sadtalker.coeffs3d` (3DMM rows of the photo and reference videos),
:mod:`~retalk.sadtalker.render` (cached-source batched renderer), :mod:`~retalk.sadtalker.budget`
(batch from GPU memory), :mod:`~retalk.sadtalker.paste` (feathered paste-back),
:mod:`~retalk.sadtalker.enhance` (GFPGAN after the renderer), :mod:`~retalk.sadtalker.engine` (end to end).
"""
from __future__ import annotations

__all__: list[str] = []
