"""VideoReTalking's array steps: reference enhancement (GPEN + ParseNet composition), the Step 7 face blend and
the Laplacian blend. Networks are handed in; nothing heavy is imported here. The engine that runs them on the
runtime is :mod:`retalk.engines.videoretalking`.
"""
