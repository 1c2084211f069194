<<<<<<< HEAD
"""VideoReTalking (Cheng et al., SIGGRAPH Asia 2022) on retalk's runtime: the pieces of ``--engine videoretalking``.

Each module does one job (nothing heavy is imported here); the engine that composes them is
:mod:`retalk.engines.videoretalking`. See ``docs/videoretalking.md``.
=======
"""VideoReTalking's non-network steps: reference enhancement (GPEN + ParseNet) and Laplacian blending.

Nothing heavy is imported here; torch is imported only inside the functions that run networks.
>>>>>>> face3d-prep
"""
