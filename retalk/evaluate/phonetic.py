"""Held-out phonetic lip-sync check: do the lips close on p/b/m and open on vowels?

Ground truth is a list of timed phones that the renderer did *not* see (for
synthesized speech, the synthesizer's own phoneme events). The rendered video
is re-tracked with the face mesh and its inner-lip opening (in inter-ocular
units) is read at each phone's frames.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retalk.face import landmarks as L
from retalk.face.tracker import FaceTracker
from retalk.media import iter_frames, probe_video
from retalk.media.video import prefetch
from retalk.speech.types import Phone, Viseme
from retalk.speech.visemes import phone_to_viseme

OPEN_VOWELS = (Viseme.AA, Viseme.EH, Viseme.AO, Viseme.OW)


@dataclass(frozen=True)
class PhoneticSync:
    """Result of :func:`phonetic_sync`.

    ``closed_fraction``: share of bilabial phones during which (or in the frame before which) the lips close
    (opening falls to the lower quarter of the clip's 10–90% range, and below
    0.035 inter-ocular distances). ``vowel_open`` / ``bilabial_open``: median
    opening (inter-ocular units) at open vowels (max over the phone) and at
    bilabials (min over the phone). ``separation`` = their difference.
    """

    closed_fraction: float
    vowel_open: float
    bilabial_open: float
    separation: float
    n_bilabials: int
    n_vowels: int

    def passed(self, min_closed: float = 0.75, min_separation: float = 0.04) -> bool:
        return self.closed_fraction >= min_closed and self.separation >= min_separation


def mouth_openings(video: str | Path) -> tuple[np.ndarray, float]:
    """Inner-lip opening per frame (inter-ocular units; NaN without a face) and the video's fps."""
    info = probe_video(video)
    tracker = FaceTracker()
    for f in prefetch(iter_frames(info)):
        tracker.update(f)
    track = tracker.finish(smooth=False)
    return L.opening_series(track.landmarks, track.valid), float(info.fps)


def phonetic_sync(video: str | Path, phones: Sequence[Phone], notation: str | None = "espeak") -> PhoneticSync:
    """Score ``video`` against ground-truth ``phones`` (times in seconds from the video's start).

    ``notation`` of the labels: "espeak" (the synthesizer's events, the default), "arpabet" or "ipa".
    """
    op, fps = mouth_openings(video)
    ok = ~np.isnan(op)
    if ok.sum() < 2:
        return PhoneticSync(0.0, 0.0, 0.0, 0.0, 0, 0)
    lo, hi = np.quantile(op[ok], [0.1, 0.9])
    thr = min(lo + 0.25 * (hi - lo), 0.035)
    bil, vow = [], []
    for ph in phones:
        v = phone_to_viseme(ph.label, notation)
        a, b = int(np.floor(ph.start * fps)), int(np.ceil(ph.end * fps))
        if v == Viseme.PBM:
            a = max(0, a - 1)  # a stop's closure precedes its burst, which is where synthesizers mark the phone
        seg = op[a:max(b, a + 1)]
        seg = seg[~np.isnan(seg)]
        if seg.size == 0:
            continue
        if v == Viseme.PBM:
            bil.append(float(seg.min()))
        elif v in OPEN_VOWELS:
            vow.append(float(seg.max()))
    closed = float(np.mean([m <= thr for m in bil])) if bil else 0.0
    vo = float(np.median(vow)) if vow else 0.0
    bo = float(np.median(bil)) if bil else 0.0
    return PhoneticSync(closed, vo, bo, vo - bo, len(bil), len(vow))
