"""Stages 2-3 shot by shot: each shot of the source has its own mouths, its own speaker range and its own path.

A clip with hard cuts (:attr:`retalk.face.tracker.FaceTrack.shot`) may show another person after a cut.
So the library is split by shot, the speech's openings are mapped onto each shot's own range of openings
(:func:`~retalk.engines.builtin.targets.speaker_targets` on that shot's frames), and the selection runs
separately over every stretch of output frames whose background comes from one shot, choosing only among
that shot's mouths. Output frames whose background is within :data:`CUT_MARGIN` frames of a cut, or whose
shot kept no library mouth, show their source frame unchanged (entry -1).

A clip of one shot takes exactly the single-shot path (same arithmetic, same frames).
"""
from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from retalk.dsp import runs
from retalk.engines.builtin.library import Library
from retalk.engines.builtin.selection import Selection, select
from retalk.engines.builtin.targets import Targets, speaker_targets
from retalk.face import landmarks as L
from retalk.face.shots import near_cut
from retalk.speech.mouth import MouthTrack

log = logging.getLogger(__name__)

CUT_MARGIN = 2  # source frames this close to a cut (either side) are passed through
NO_ENTRY = -1  # the selection's entry for an output frame shown unchanged


def sub_library(library: Library, keep: np.ndarray) -> Library:
    """The entries of ``library`` where ``keep`` (bool (k,)) is True, same stride."""
    idx = np.flatnonzero(keep)
    return Library(tuple(library.entries[j] for j in idx), library.stride, library.descriptors[idx])


def select_by_shot(library: Library, mouth: MouthTrack, landmarks: np.ndarray, valid: np.ndarray,
                   pose: np.ndarray, schedule: np.ndarray, shot: np.ndarray, **select_options: float,
                   ) -> tuple[Targets, Selection]:
    """Targets and selection for every output frame, shot by shot (see the module docstring).

    ``landmarks`` (n_src, 478, >=2), ``valid`` (n_src,), ``pose`` (n_src, 3) and ``shot`` (n_src,): the face track;
    ``schedule``: int (n,), each output frame's background source frame; ``select_options``: passed to
    :func:`~retalk.engines.builtin.selection.select`. Returns targets whose per-frame arrays hold each
    frame's own shot's targets (the scalars: the first shot's) and the selection (entry -1: pass through).
    """
    valid_idx = np.flatnonzero(valid)
    desc_all = np.array([L.mouth_descriptor(landmarks[k]) for k in valid_idx])
    shot = np.asarray(shot)
    if not len(shot) or shot.max() == 0:  # one shot: the single-shot path, unchanged
        targets = speaker_targets(mouth, desc_all, valid_idx)
        return targets, select(library, targets, landmarks, pose, schedule, **select_options)
    n = len(schedule)
    entry = np.full(n, NO_ENTRY, np.int32)
    opening = np.zeros(n, np.float64)
    width = np.zeros(n, np.float64)
    closed = np.asarray(mouth.closed, bool).copy()
    out_shot = shot[schedule]
    render = ~near_cut(shot, CUT_MARGIN)[schedule]
    lib_shot = shot[library.frames]
    first: Targets | None = None
    jumps = 0
    for s in np.unique(out_shot[render]):
        in_lib = lib_shot == s
        frames_s = valid_idx[shot[valid_idx] == s]
        if not in_lib.any() or not len(frames_s):
            continue
        lib_s = sub_library(library, in_lib)
        t = speaker_targets(mouth, desc_all[shot[valid_idx] == s], frames_s)
        first = first or t
        base = np.flatnonzero(in_lib)
        for a, b in runs(render & (out_shot == s)):
            part = replace(t, opening=t.opening[a:b], width=t.width[a:b], closed=t.closed[a:b])
            sel = select(lib_s, part, landmarks, pose, schedule[a:b], **select_options)
            entry[a:b] = base[sel.entry]
            opening[a:b], width[a:b] = t.opening[a:b], t.width[a:b]
            jumps += sel.jumps
    shown = entry != NO_ENTRY
    log.info("%d shots: %d of %d output frames dubbed, %d shown as they are (near a cut or no mouth of their shot)",
             int(shot.max()) + 1, int(shown.sum()), n, n - int(shown.sum()))
    if first is None:  # no shot has a mouth to show
        first = speaker_targets(mouth, desc_all, valid_idx)
    targets = replace(first, opening=opening, width=width, closed=closed)
    return targets, Selection(entry, jumps)
