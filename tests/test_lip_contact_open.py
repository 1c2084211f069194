"""Lip repairs on a wide-open photo's mouth warped to a partly open or closed target (issue 15).

A partly open target narrower than the picture's mouth must stay visibly open (no contact line drawn across its
gap), and a lip repainted after closing takes the lip's own colour, not that of grey teeth left on it.
"""
from __future__ import annotations

import numpy as np

from retalk.compose.blend import polygon_mask
from retalk.compose.lip_contact import contact_share, lip_contact, refill_lips

IOD = 100.0  # pixels


def _contours(gap_iod: float) -> tuple[np.ndarray, np.ndarray]:
    """Inner contours (11 points, corner to corner) of a mouth 120 px wide whose middle gap is ``gap_iod``."""
    xs = np.linspace(40, 160, 11)
    arch = np.sin(np.linspace(0, np.pi, 11))
    half = 0.5 * gap_iod * IOD
    return np.stack([xs, 60 - half * arch], 1), np.stack([xs, 60 + half * arch], 1)


def test_contact_share_fades_out_as_the_lips_part():
    assert contact_share(*_contours(0.0), IOD) == 1.0
    assert contact_share(*_contours(0.01), IOD) == 1.0
    assert contact_share(*_contours(0.09), IOD) == 0.0  # a partly open target: about 6 mm on an adult face


def test_a_partly_open_target_keeps_its_gap():
    """The gap of a 0.09 io opening keeps the picture's dark interior; a closed one is covered with lip colour."""
    fg = np.full((120, 200, 3), (190.0, 110.0, 110.0), np.float32)  # lips everywhere ...
    for gap, want_dark in ((0.09, True), (0.0, False)):
        upper, lower = _contours(gap)
        img = fg.copy()
        img[52:68, 60:140] = 30.0  # ... and a dark interior in the middle, where a squeezed gap shows it
        outer_u = upper - [0, 12]
        outer_l = lower + [0, 12]
        mouth = polygon_mask(img.shape[:2], np.concatenate([outer_u, outer_l[::-1]]))
        out = lip_contact(img, upper, lower, mouth, IOD, 1.0)
        centre = out[58:62, 95:105].mean()
        assert (centre < 60) == want_dark, (gap, centre)


def test_refilled_lip_takes_the_lips_colour_not_the_teeth_left_on_it():
    """A lower lip 60% covered by grey teeth about as bright as the lip is repainted red, not grey."""
    upper, lower = _contours(0.0)
    outer_u, outer_l = upper - [0, 15], lower + [0, 15]
    fg = np.zeros((120, 200, 3), np.float32)
    lip_mask = polygon_mask(fg.shape[:2], np.concatenate([outer_l, lower[::-1]])) > 128
    ys, xs = np.nonzero(lip_mask)
    red, grey = np.array([190.0, 110.0, 110.0]), np.array([140.0, 140.0, 140.0])
    fg[ys, xs] = red
    teeth = xs < np.quantile(xs, 0.6)  # the left 60% of the lower lip: teeth carried onto it by the warp
    fg[ys[teeth], xs[teeth]] = grey
    out = refill_lips(fg, outer_u, upper, lower, outer_l, IOD, 1.0)
    painted = out[ys, xs]
    assert np.median(painted[:, 0] - painted[:, 1]) > 50  # red: the lip's own colour everywhere
