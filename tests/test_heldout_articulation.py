"""Held-out articulation check: synthesized speech given to ``retalk sync`` as a plain wav (no phone timings).

The sentences and voices below were chosen before any tuning of the mouth targets and never tuned on
(tuning used other sentences and voices, listed in the report of the change).
"""
from __future__ import annotations

HELD_OUT = (
    ("Pop the top off a bottle of malt, and pass the hot map to Bob.", "en-us"),
    ("My cousin Pam baked a pie, but the palm hut was far above the bay.", "en-us+f4"),
)
