"""SadTalker's coefficient generation: audio -> per-frame 3DMM motion -> renderer inputs.

One module per step of the reference's data flow (photo + speech -> talking
head), as pure functions over arrays where the step allows:

* :mod:`~retalk.sadtalker.types`: frozen :class:`MotionCoeffs` (exp, pose, crop per frame);
* :mod:`~retalk.sadtalker.audio`: frame count and one 16-column mel window per 25 fps frame;
* :mod:`~retalk.sadtalker.blinks`: seeded eye-blink ratios, reference-video tiling;
* :mod:`~retalk.sadtalker.motion`: audio2exp in 10-frame chunks, audio2pose,
  pose smoothing, ``--pose-style``, ``--ref-pose`` / ``--ref-eyeblink`` (needs torch);
* :mod:`~retalk.sadtalker.windows`: the 27-frame coefficient windows fed to the mapping net;
* :mod:`~retalk.sadtalker.head_angles`: ``--input-yaw/-pitch/-roll`` ramps;
* :mod:`~retalk.sadtalker.keypoints`: mapping output -> driving key points (needs torch).

Importing this package imports nothing heavy (no torch); the torch-using
modules import it inside their functions.
"""
from __future__ import annotations

__all__: list[str] = []
