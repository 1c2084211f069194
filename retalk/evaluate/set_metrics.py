"""Set-level metrics of ``retalk eval``: FID and KID of all rendered frames against all source frames."""
from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from retalk.evaluate.columns import VIDEOS_DIR
from retalk.evaluate.dataset import Pair

log = logging.getLogger(__name__)


def fid_kid(pairs: Sequence[Pair], rows: Mapping[str, Mapping[str, str]], out_dir: Path, model: Any,
            frame_step: int, progress: bool) -> dict[str, float | None]:
    """FID and KID of every ``frame_step``-th rendered frame (clips with status ok) against the source frames.

    ``model``: the loaded FID Inception network.  Returns ``{"fid", "kid", "kid_std"}`` in squared
    feature units; all None (with a warning) when either set has fewer than 2 frames.
    """
    from retalk.media import iter_frames, probe_video
    from retalk.metrics import fid, inception_features, kid

    ok = [p for p in pairs if rows.get(p.clip.id, {}).get("status") == "ok"]

    def frames(paths: Iterable[Path], desc: str) -> Iterator[np.ndarray]:
        for path in tqdm(list(paths), desc=desc, unit="clip", disable=not progress, leave=False):
            for i, f in enumerate(iter_frames(probe_video(path))):
                if i % frame_step == 0:
                    yield f

    gen = inception_features(frames((out_dir / VIDEOS_DIR / f"{p.clip.id}.mp4" for p in ok), "FID rendered"), model)
    src = inception_features(frames((p.clip.video for p in ok), "FID source"), model)
    if min(len(gen), len(src)) < 2:
        log.warning("FID/KID need at least 2 frames in each set; got %d and %d", len(gen), len(src))
        return {"fid": None, "kid": None, "kid_std": None}
    k = kid(gen, src)
    return {"fid": fid(gen, src), "kid": k.mean, "kid_std": k.std}
