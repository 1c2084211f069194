"""The VideoReTalking engine (``--engine videoretalking``): the engine class and its pieces, one job each.

* :mod:`.engine`: :class:`~.engine.VideoReTalkingEngine`, which composes the rest (imports torch);
* :mod:`.release`: the release files a run needs, every missing one in one message (no torch);
* :mod:`.cache`: per-clip coefficients and enhanced faces kept by input hash (no torch);
* :mod:`.analysis`: the crop box and 3DMM coefficients of every source frame;
* :mod:`.context`, :mod:`.store`, :mod:`.tensors`, :mod:`.progress`: what the ops share;
* :mod:`.speed`: the networks as they run on a CPU (channels-last, compiled for long clips);
* the runtime ops, one per network: :mod:`.stabilise` (D-Net), :mod:`.reference` (GPEN + ParseNet),
  :mod:`.lipsync` (E-Net), :mod:`.upface` (GANimation), :mod:`.paste` (GFPGAN, ParseNet masks, blends).

The array functions they call (68 points, crop, alignment, coefficients, templates, the Step 5
composition, the Laplacian blend) live below, in :mod:`retalk.face`, :mod:`retalk.face3d` and
:mod:`retalk.videoretalking`. Nothing is imported here, so ``doctor`` can read :mod:`.release` without torch.
"""
