"""SadTalker (photo + speech → talking head) with its released networks: ``retalk animate --engine sadtalker``.

One module per step of the reference's data flow, as pure functions over arrays where the step allows.

Coefficient generation (audio → per-frame 3DMM motion → renderer inputs):

* :mod:`~retalk.sadtalker.types`: frozen :class:`MotionCoeffs` (exp, pose, crop per frame);
* :mod:`~retalk.sadtalker.audio`: frame count and one 16-column mel window per 25 fps frame;
* :mod:`~retalk.sadtalker.blinks`: seeded eye-blink ratios, reference-video tiling;
* :mod:`~retalk.sadtalker.motion`: audio2exp in 10-frame chunks, audio2pose,
  pose smoothing, ``--pose-style``, ``--ref-pose`` / ``--ref-eyeblink`` (needs torch);
* :mod:`~retalk.sadtalker.windows`: the 27-frame coefficient windows fed to the mapping net;
* :mod:`~retalk.sadtalker.head_angles`: ``--input-yaw/-pitch/-roll`` ramps;
* :mod:`~retalk.sadtalker.keypoints`: mapping output -> driving key points (needs torch).

Preprocessing, rendering, paste-back and the engine:

* :mod:`~retalk.sadtalker.files`: the files a run needs, one message for all that are missing;
* :mod:`~retalk.sadtalker.preprocess`: ``--preprocess`` crop geometry → the source image;
* :mod:`~retalk.sadtalker.coeffs3d`: 3DMM rows of the photo and of reference videos (streamed);
* :mod:`~retalk.sadtalker.render`: the cached-source batched renderer and its runtime op;
* :mod:`~retalk.sadtalker.budget`: frames per renderer call from free GPU memory;
* :mod:`~retalk.sadtalker.paste`: feathered paste-back for full/extfull;
* :mod:`~retalk.sadtalker.enhance`: GFPGAN after the renderer;
* :mod:`~retalk.sadtalker.engine`: ``animate --engine sadtalker`` end to end.

Importing this package imports nothing heavy (no torch); the torch-using
modules import it inside their functions.
"""
from __future__ import annotations

__all__: list[str] = []
