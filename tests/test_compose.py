"""Masks and blending used by every renderer."""
import cv2
import numpy as np
import pytest

from retalk.compose.blend import feather, laplacian_blend, polygon_mask


@pytest.mark.parametrize("shape", [(421, 463), (200, 97)])
@pytest.mark.parametrize("sigma", [2.0, 6.0, 9.0, 12.0])
def test_feather_matches_a_full_size_gaussian(shape, sigma):
    h, w = shape
    poly = np.array([[0.13, 0.1], [0.86, 0.14], [0.93, 0.7], [0.5, 0.95], [0.09, 0.66]]) * (w, h)
    m = polygon_mask(shape, poly).astype(np.float32) / 255.0
    k = int(2 * round(3 * sigma) + 1)
    ref = np.clip(cv2.GaussianBlur(m, (k, k), sigma), 0, 1)
    out = feather(m, sigma)
    assert out.shape == m.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert np.abs(out - ref).max() < 0.012
    assert out[h // 2, w // 2] > 0.99 and out[-1, 0] < 0.01


def test_laplacian_blend_keeps_each_side_where_the_mask_is_flat():
    rng = np.random.default_rng(0)
    fg = rng.uniform(0, 255, (64, 80, 3)).astype(np.float32)
    bg = rng.uniform(0, 255, (64, 80, 3)).astype(np.float32)
    assert np.array_equal(laplacian_blend(fg, bg, np.zeros((64, 80), np.float32)), bg)
    assert np.allclose(laplacian_blend(fg, bg, np.ones((64, 80), np.float32)), fg, atol=1e-3)
    half = np.zeros((64, 80), np.float32)
    half[:, :40] = 1.0
    out = laplacian_blend(fg, bg, feather(half, 3.0))
    assert np.allclose(out[:, :8], fg[:, :8], atol=2.0) and np.allclose(out[:, -8:], bg[:, -8:], atol=2.0)


def _open_mouth(iod=120.0):
    xs = np.linspace(40, 160, 11)
    arch = np.sin(np.linspace(0, np.pi, 11))
    upper = np.stack([xs, 60 - 4 * arch], 1)
    lower = np.stack([xs, 60 + 40 * arch], 1)  # a wide-open mouth, 40 px deep in the middle
    return upper, lower, iod


def test_interior_reveal_sweeps_up_from_the_lower_lip():
    from retalk.compose.interior import synthesize_interior

    upper, lower, iod = _open_mouth()
    lip, skin, teeth = np.array([170, 70, 80]), np.array([200, 160, 140]), np.array([235, 230, 220])
    full_img, full = synthesize_interior((140, 200), upper, lower, lip, skin, iod, teeth)
    img0, none = synthesize_interior((140, 200), upper, lower, lip, skin, iod, teeth, reveal=0.0)
    _, half = synthesize_interior((140, 200), upper, lower, lip, skin, iod, teeth, reveal=0.5)
    assert np.array_equal(img0, full_img) and none.max() == 0.0 and full[80, 100] > 0.99
    # mid column: the gap runs from y = 56 (upper lip) to y = 100 (lower lip)
    assert half[94, 100] > 0.95  # next to the lower lip: painted
    assert half[62, 100] < 0.05  # just under the upper lip: the picture's own teeth stay
    assert np.all(np.diff(half[58:96, 100]) >= -1e-4)  # one front, no banding


def test_interior_shows_upper_and_lower_teeth_in_a_wide_mouth():
    from retalk.compose.interior import synthesize_interior

    upper, lower, iod = _open_mouth()
    lip, skin, teeth = np.array([170, 70, 80]), np.array([200, 160, 140]), np.array([235, 230, 220])
    img, _ = synthesize_interior((140, 200), upper, lower, lip, skin, iod, teeth)
    col = img[:, 100].mean(1)
    assert col[58:62].max() > 180  # upper teeth hang from the upper lip
    assert col[75:85].max() < 90  # dark cavity in the middle
    assert col[93:99].max() > 110  # lower teeth above the lower lip, in shadow
    # the lower teeth are narrower than the upper ones
    upper_row, lower_row = img[59].mean(1), img[96].mean(1)
    assert (lower_row > 110).sum() < (upper_row > 150).sum()


def test_interior_reveal_per_contour_point_paints_only_where_asked():
    from retalk.compose.interior import synthesize_interior

    upper, lower, iod = _open_mouth()
    lip, skin = np.array([170, 70, 80]), np.array([200, 160, 140])
    # the left half of the mouth never opened in the picture (paint it), the right half did (keep it)
    reveal = np.where(upper[:, 0] < 100, 1.0, 0.0)
    _, alpha = synthesize_interior((140, 200), upper, lower, lip, skin, iod, None, reveal=reveal)
    assert alpha[64:80, 70:85].min() > 0.95
    assert alpha[64:80, 115:130].max() < 0.05


def test_lip_contact_covers_squeezed_teeth_and_specks():
    from retalk.compose.lip_contact import lip_contact

    h, w, iod = 60, 120, 80.0
    fg = np.full((h, w, 3), (200, 160, 140), np.float32)  # skin
    xs = np.linspace(20, 100, 11)
    upper = np.stack([xs, 30 - 1.0 * np.sin(np.linspace(0, np.pi, 11))], 1)
    lower = np.stack([xs, 30 + 1.0 * np.sin(np.linspace(0, np.pi, 11))], 1)
    outer = np.concatenate([np.stack([xs, 30 - 8 * np.sin(np.linspace(0, np.pi, 11))], 1),
                            np.stack([xs[::-1], 30 + 9 * np.sin(np.linspace(0, np.pi, 11))], 1)])
    mouth = polygon_mask((h, w), outer)
    fg[mouth > 128] = (170, 90, 90)  # lips
    fg[29:32, 24:96:4] = 250  # squeezed teeth: bright dots along the meeting line
    fg[25, 60] = fg[36, 50] = 20  # dark specks on the lips
    out = lip_contact(fg.copy(), upper, lower, mouth, iod, 1.0)
    line = out[29:32, 26:94].mean(2)
    assert line.max() < 140  # no bright teeth left where the lips meet ...
    assert line.std() < 0.5 * fg[29:32, 26:94].mean(2).std()  # ... and no dotted pattern
    assert out[25, 60].mean() > 80 and out[36, 50].mean() > 80  # specks gone
    assert np.array_equal(out[:5], fg[:5])  # skin away from the mouth untouched
    weak = lip_contact(fg.copy(), upper, lower, mouth, iod, 0.0)
    assert np.allclose(weak, fg)  # strength 0: nothing painted


@pytest.mark.parametrize("skin", [(235, 205, 190), (120, 80, 60), (170, 150, 165)])
def test_painted_teeth_follow_the_skin_and_are_never_paper_white(skin):
    """A face without visible teeth: teeth brighter than the skin, below 240 in every channel, carrying its hue."""
    from retalk.compose.interior import synthesize_interior

    upper = np.stack([np.linspace(40, 160, 13), np.full(13, 50.0)], 1)
    lower = np.stack([np.linspace(40, 160, 13), 50 + 40 * np.sin(np.linspace(0, np.pi, 13))], 1)
    img, alpha = synthesize_interior((140, 200), upper, lower, np.array([150.0, 70, 70]), np.array(skin, float),
                                     100.0, None)
    teeth = img[52:56, 95:105].reshape(-1, 3).mean(0)  # just under the upper lip, mid-mouth
    throat = img[75:82, 95:105].reshape(-1, 3).mean(0)
    assert teeth.max() < 240 and teeth.mean() > 1.1 * np.mean(skin) * 0.9
    assert throat.mean() < 0.35 * teeth.mean()  # a dark cavity behind them
    order = np.argsort(skin)
    assert teeth[order[-1]] >= teeth[order[0]]  # the skin's warmest channel stays the teeth's warmer one


def test_bright_specks_on_the_lips_go_teeth_inside_stay():
    from retalk.compose.specks import remove_bright_specks

    h, w, iod = 80, 140, 100.0
    fg = np.full((h, w, 3), (200, 160, 140), np.float32)
    xs = np.linspace(30, 110, 11)
    arc = np.sin(np.linspace(0, np.pi, 11))
    inner = np.concatenate([np.stack([xs, 40 - 4 * arc], 1), np.stack([xs[::-1], 40 + 4 * arc], 1)])
    outer = np.concatenate([np.stack([xs, 40 - 12 * arc], 1), np.stack([xs[::-1], 40 + 14 * arc], 1)])
    fg[polygon_mask((h, w), outer) > 128] = (170, 90, 90)
    fg[polygon_mask((h, w), inner) > 128] = (235, 230, 220)  # teeth
    fg[50:52, 70:72] = 250  # a speck on the lower lip
    fg[30, 60] = 250  # one on the upper lip
    out = remove_bright_specks(fg, inner, outer, iod)
    assert out[50:52, 70:72].mean() < 190 and out[30, 60].mean() < 190
    assert np.array_equal(out[39:42, 60:80], fg[39:42, 60:80])  # the teeth are untouched
    assert np.array_equal(out[:10], fg[:10])


def test_a_wide_open_mouth_closed_shows_its_own_lips_and_one_contact_line():
    """The lips of a wide-open mouth warped shut hold its tongue and teeth; refilled, they are lip-coloured and
    the lips meet along one continuous dark line."""
    from retalk.compose.lip_contact import lip_contact, refill_lips

    h, w, iod = 60, 120, 60.0  # a small face: the line is about one pixel wide
    xs = np.linspace(20, 100, 11)
    s = np.sin(np.linspace(0, np.pi, 11))
    meet = np.stack([xs, 30 + 0.5 * s], 1)  # closed: the inner contours coincide
    up_out = np.stack([xs, 30 - 7 * s], 1)
    lo_out = np.stack([xs, 30 + 9 * s], 1)
    fg = np.full((h, w, 3), (200, 160, 140), np.float32)  # skin
    up_lip = polygon_mask((h, w), np.concatenate([up_out, meet[::-1]])) > 128
    lo_lip = polygon_mask((h, w), np.concatenate([lo_out, meet[::-1]])) > 128
    fg[up_lip] = (150, 60, 70)  # upper lip, dark red
    fg[lo_lip] = (165, 70, 80)  # lower lip
    tongue, teeth = np.array((235, 170, 175), np.float32), np.array((240, 240, 235), np.float32)
    fg[31:35, 35:85] = tongue  # the squashed tongue covers the upper part of the lower lip ...
    fg[28:31, 40:80:3] = teeth  # ... and the squeezed upper teeth dot the meeting line
    mouth = polygon_mask((h, w), np.concatenate([up_out, lo_out[::-1]]))
    out = refill_lips(fg.copy(), up_out, meet, meet, lo_out, iod, 1.0)
    out = lip_contact(out, meet, meet, mouth, iod, 1.0)
    lips = (mouth > 128)
    px = out[lips]
    assert not np.any(np.all(px > 200, axis=1))  # no teeth-white
    assert not np.any((px[:, 0] > 200) & (px[:, 1] > 140))  # no tongue-pink
    # the contact line: along the mouth the darkest pixel of each column lies on the meeting line, as one run
    cols = np.arange(30, 91)
    y_line = np.interp(cols, meet[:, 0], meet[:, 1])
    dark = np.array([out[int(y) - 3:int(y) + 4, c].sum(1).min() for y, c in zip(y_line, cols)])
    around = np.array([out[int(y) + 5, c].sum() for y, c in zip(y_line, cols)])
    assert np.all(dark < around - 60)  # continuous: every column is darker on the line than the lip below
    assert np.array_equal(out[:5], fg[:5])  # skin away from the mouth untouched
    assert np.allclose(refill_lips(fg.copy(), up_out, meet, meet, lo_out, iod, 0.0), fg)
