"""VideoReTalking (Cheng et al., SIGGRAPH Asia 2022) on retalk's runtime: the pieces of ``--engine videoretalking``.

Each module does one job; nothing heavy is imported here (torch only in the modules that run
networks). The engine that composes them is :mod:`retalk.engines.videoretalking`; see
``docs/videoretalking.md``.
"""
