"""The built-in engine's targets open as wide as the speaker and spread like the speaker (issue 15, item 1).

Expected values come from the source speaker's own openings (made here, outside the code): their standard
deviation and their widest openings. (How much the rendered mouth changes frame to frame is checked on a
render, in ``tests/test_heldout_articulation.py``.) Before the change, the smoothness matching
ran after the rank mapping and sank the peaks towards the pinned closures: on this speaker the targets spread
0.57–0.67x as much as the speaker's own (the issue's 0.4–0.7x) and their widest stayed below the speaker's 90th
percentile (measured on the code before the change, syllables at 2.0 and 2.5 Hz).
"""
from __future__ import annotations

import numpy as np
import pytest

from retalk.engines.builtin.targets import speaker_targets
from retalk.samples import vowel_speech
from retalk.speech.mouth import mouth_track

FPS = 25.0
RATE = 16000


def _smooth_speaker(n: int = 200, seed: int = 0) -> np.ndarray:
    """Descriptors (n, 5) of a speaker whose lips move smoothly: syllables at 2.5 Hz of varying height,
    0.02 ... 0.32 face units, resting nearly closed a fifth of the time."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / FPS
    peaks = np.repeat(rng.uniform(0.3, 1.0, n // 6 + 1), 6)[:n]
    o = 0.02 + 0.3 * peaks * np.clip(np.sin(2 * np.pi * 2.5 * t), 0.0, None) ** 1.5
    d = np.zeros((n, 5), np.float32)
    d[:, 0] = o
    d[:, 1] = 1.0
    return d


@pytest.mark.parametrize("seed", [0, 1])
def test_targets_spread_like_the_speaker_and_reach_their_widest(seed):
    desc = _smooth_speaker(seed=seed)
    speech = vowel_speech(4.0, RATE, syllable_rate=3.5, seed=seed)
    n = int(4.0 * FPS)
    t = speaker_targets(mouth_track(speech, RATE, FPS, n), desc, np.arange(len(desc)))
    src = desc[:, 0].astype(np.float64)
    assert t.varied
    ratio = float(np.std(t.opening)) / float(np.std(src))
    assert 0.8 <= ratio <= 1.25  # the bounds
    assert float(np.max(t.opening)) >= float(np.quantile(src, 0.9))  # the widest syllables open as wide as theirs
