"""The built-in engine: photoreal lip sync with no weights, after Video Rewrite (Bregler et al. 1997).

The source video is the library of this speaker's mouth appearances. Five stages, one module each:

1. **Library** (:mod:`.library`, analysis pass): a bounded set of lower-face crops at full
   resolution, one every ``stride`` frames (the stride doubles whenever the set would exceed its
   memory budget, so memory does not grow with length).
2. **Targets** (:mod:`.targets`): the speech's mouth track (0 = closed … 1 = wide) is mapped into
   this speaker's own range of lip openings and widths (quantiles over the clip).
3. **Selection** (:mod:`.selection`): dynamic programming (Viterbi) over library entries for every
   output frame: close to the target shape and to the background frame's head pose, preferring to
   play real consecutive frames and penalising jumps, which avoids stutter between a few entries. A
   jump costs more the more the mouth jumped to looks unlike the one that would have come next (small
   aligned grey patches), so the mouth's appearance changes frame to frame about as much as the speaker's own.
4. **Geometry** (:mod:`.geometry`): the chosen entry's whole lip and jaw shape, moved onto the
   background frame by a similarity fitted on stable points (eyes, nose), plus a small residual (lower
   lip and jaw drop, width) so the opening meets the target exactly; a closure target always closes. The
   jaw keeps the background frame's own sideways placement (an entry's head turn would swing the chin),
   and its offset from the frame's own jaw is averaged over a few frames either side (the lips are not:
   they meet the target exactly).
5. **Rendering** (:mod:`.render`): the background frame's own lower face and neck are warped to that
   geometry (so the chin moves with the jaw), the chosen mouth is warped onto it with the same
   triangulation, colour-matched on the skin, and blended with a Laplacian pyramid under a feathered
   lower-face mask. Where the target opens wider than the chosen mouth ever did (a still photo), the mouth
   interior is synthesized; where it closes a parted mouth, the lips are drawn meeting
   (:mod:`retalk.compose.lip_contact`).

Shots: a clip with hard cuts (:attr:`retalk.face.tracker.FaceTrack.shot`) runs stages 2-3 shot by shot
(:mod:`.shots`): a frame only ever shows a mouth of its own shot, frames within two frames of a cut are shown
as they are, and nothing in stages 4-5 (jaw averaging, mixing in the previous mouth) reaches across a cut.

Stages 1-3 run in :meth:`BuiltinEngine.prepare`, which returns their frozen result (:class:`Prepared`);
stages 4-5 run per output frame in :meth:`BuiltinEngine.render` and only read it.
"""
from __future__ import annotations

import logging

import numpy as np

from retalk.engines.base import Engine, Plan, RenderItem
from retalk.engines.builtin.geometry import MOBILE
from retalk.engines.builtin.library import Library, LibraryBuilder, LibraryEntry, mouth_patches, pairwise_rms
from retalk.engines.builtin.render import MouthRenderer, Prepared
from retalk.engines.builtin.selection import Selection
from retalk.engines.builtin.shots import select_by_shot
from retalk.engines.builtin.targets import Targets, match_smoothness, smooth_pinned

log = logging.getLogger(__name__)

# the stages' hand-over types, and the names this module had before its split (kept importable from here)
__all__ = [
    "MOBILE", "BuiltinEngine", "Library", "LibraryEntry", "Prepared", "Selection", "Targets",
    "match_smoothness", "mouth_patches", "pairwise_rms", "smooth_pinned",
]


class BuiltinEngine(Engine):
    """Photoreal lip sync from the speaker's own footage; see the module docstring.

    ``library_budget_mb`` bounds the memory of stored mouth crops (megabytes); ``max_entries``
    bounds the selection problem's size. ``jump_cost``: the price of leaving the source's own frame
    order; ``shape_tolerance``: an opening error of this fraction of the speaker's range of openings
    costs 1 (on the scale of ``jump_cost``); ``appearance_weight``: what a jump costs per unit of
    visual difference (in the speaker's own frame-to-frame change) between the mouth jumped to and the
    one that would have come next; ``temporal_blend``: the share of the previous frame's mouth (warped
    to the current shape) mixed into each frame; ``crossfade``: mix half of the mouth that would have
    come next in at a jump; ``jaw_smoothing``: output frames either side over which the jaw's placement
    is averaged (0: none).
    """

    name = "builtin"
    batch_size = 8

    def __init__(self, library_budget_mb: float = 320.0, max_entries: int = 300, jump_cost: float = 5.0,
                 shape_tolerance: float = 0.1, crossfade: bool = True, appearance_weight: float = 5.0,
                 temporal_blend: float = 0.3, jaw_smoothing: int = 3, **_: object) -> None:
        self.jump_cost = jump_cost
        self.shape_tolerance = shape_tolerance
        self.crossfade = crossfade
        self.appearance_weight = appearance_weight
        self.temporal_blend = temporal_blend
        self.jaw_smoothing = int(jaw_smoothing)
        self._builder = LibraryBuilder(library_budget_mb * 1e6, max_entries)
        self._renderer: MouthRenderer | None = None

    def observe(self, index: int, frame: np.ndarray, landmarks: np.ndarray | None) -> None:
        """Stage 1: keep this frame's lower face in the library (every ``stride`` frames, within the budget)."""
        self._builder.add(index, frame, landmarks)

    def prepare(self, plan: Plan) -> Prepared | None:  # type: ignore[override]  # the base returns None
        """Stages 1-3 for the whole job: the library, the targets and the selection.

        Returns them (frozen), or None when no library mouth has a face in the final track (then
        :meth:`render` returns the frames unchanged).
        """
        self._renderer = None
        track = plan.track
        library = Library.from_entries(self._builder.entries, self._builder.stride, track.landmarks, track.valid)
        if not len(library):
            return None
        targets, selection = select_by_shot(
            library, plan.mouth, track.landmarks, track.valid, track.pose, plan.schedule, track.shots(),
            shape_tolerance=self.shape_tolerance, jump_cost=self.jump_cost, appearance_weight=self.appearance_weight)
        log.info("built-in engine: %d library mouths (every %d frames), %s; opening range %.3f–%.3f",
                 len(library), library.stride,
                 "varied" if targets.varied else "few shapes: warping + synthesized interior",
                 targets.open_lo, targets.open_hi)
        prepared = Prepared(plan, library, targets, selection)
        self._renderer = MouthRenderer(prepared, crossfade=self.crossfade, temporal_blend=self.temporal_blend,
                                       jaw_smoothing=self.jaw_smoothing)
        return prepared

    def render(self, items: list[RenderItem]) -> list[np.ndarray]:
        """Stages 4-5 for each item, in order (the frames themselves where :meth:`prepare` found no mouth)."""
        r = self._renderer
        return [it.frame if r is None else r.render_one(it) for it in items]
