"""VideoReTalking's non-network steps: reference enhancement (GPEN + ParseNet) and Laplacian blending.

Nothing heavy is imported here; torch is imported only inside the functions that run networks.
"""
