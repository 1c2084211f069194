"""The built-in engine's appearance measure, which makes its jumps go to look-alike mouths."""
import numpy as np

from retalk.engines.builtin.engine import LibraryEntry, mouth_patches, pairwise_rms
from retalk.face.tracker import FaceMesh
from retalk.samples import astronaut


def test_pairwise_rms_matches_brute_force():
    x = np.random.default_rng(0).normal(size=(7, 50)).astype(np.float32)
    d = pairwise_rms(x)
    brute = np.sqrt(((x[:, None, :].astype(np.float64) - x[None, :, :]) ** 2).mean(-1))
    np.testing.assert_allclose(d, brute, atol=1e-4)
    assert np.allclose(np.diag(d), 0.0, atol=1e-4)


def test_mouth_patches_align_crops_and_see_the_mouth():
    img = astronaut(384)
    lm = FaceMesh(static=True)(img)[0]
    # the same face cropped at two different places: same patch after alignment
    a = LibraryEntry(0, 10, 40, img[40:, 10:].copy())
    b = LibraryEntry(1, 30, 60, img[60:, 30:].copy())
    # the same face with the mouth painted dark: a different patch
    dark = img.copy()
    c0, c1 = lm[[61, 291], 0].astype(int)
    y0 = int(lm[13, 1]) - 4
    dark[y0:y0 + 8, c0:c1] = 20
    c = LibraryEntry(2, 10, 40, dark[40:, 10:].copy())
    landmarks = np.stack([lm, lm, lm])
    p = mouth_patches([a, b, c], landmarks)
    d = pairwise_rms(p)
    assert d[0, 1] < 1.0  # grey levels: alignment removes the crop offset
    assert d[0, 2] > 5 * max(d[0, 1], 0.5)


def test_lip_contact_covers_squeezed_teeth_and_specks():
    from retalk.compose.blend import polygon_mask
    from retalk.engines.builtin.engine import BuiltinEngine

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
    out = BuiltinEngine._lip_contact(fg.copy(), upper, lower, mouth, iod, 1.0)
    line = out[29:32, 26:94].mean(2)
    assert line.max() < 140  # no bright teeth left where the lips meet ...
    assert line.std() < 0.5 * fg[29:32, 26:94].mean(2).std()  # ... and no dotted pattern
    assert out[25, 60].mean() > 80 and out[36, 50].mean() > 80  # specks gone
    assert np.array_equal(out[:5], fg[:5])  # skin away from the mouth untouched
    weak = BuiltinEngine._lip_contact(fg.copy(), upper, lower, mouth, iod, 0.0)
    assert np.allclose(weak, fg)  # strength 0: nothing painted


def test_the_jaw_keeps_the_frames_own_sideways_place():
    from retalk.engines.builtin.engine import MOBILE, BuiltinEngine
    from retalk.face import landmarks as L

    lm = FaceMesh(static=True)(astronaut(384))[0][:, :2].astype(np.float64)
    iod = float(L.interocular(lm))
    _, ex, ey = L.face_frame(lm)
    # an entry whose head was turned: its lips and jaw sit 0.1 inter-ocular distances to one side, and
    # its mouth is open further (lower lip and chin 0.05 lower)
    entry = lm.copy()
    entry[MOBILE] += 0.1 * iod * ex
    entry[np.concatenate([L.LOWER_OUTER, L.LOWER_INNER, [L.CHIN]])] += 0.05 * iod * ey
    identity = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    tgt = BuiltinEngine.place(lm, entry, identity)
    side = lambda p: float((p - lm[L.CHIN]) @ ex) / iod  # noqa: E731
    down = lambda p: float((p - lm[L.CHIN]) @ ey) / iod  # noqa: E731
    assert abs(side(tgt[L.CHIN])) < 1e-6  # the chin stays where the frame's own head puts it ...
    assert down(tgt[L.CHIN]) > 0.049  # ... and drops as the entry says
    lip = L.UPPER_OUTER[len(L.UPPER_OUTER) // 2]
    assert abs(side(tgt[lip]) - side(entry[lip])) < 1e-6  # the lips are the entry's
    assert np.array_equal(tgt[L.STABLE], lm[L.STABLE])  # eyes and nose untouched


def test_the_jaw_is_averaged_over_neighbouring_frames_and_the_lips_are_not():
    from types import SimpleNamespace

    from retalk.engines.builtin.engine import BuiltinEngine
    from retalk.face import landmarks as L

    lm = FaceMesh(static=True)(astronaut(384))[0].astype(np.float64)
    iod = float(L.interocular(lm))
    _, _, ey = L.face_frame(lm[:, :2])
    other = lm.copy()  # a library mouth whose jaw line sits 0.05 inter-ocular distances lower
    jaw = np.array(sorted(set(L.JAW[3:-3]) | {L.CHIN}))
    other[jaw, :2] += 0.05 * iod * ey
    n = 12
    landmarks = np.stack([lm] * n + [lm, other])  # frames 0..11: the video; 12, 13: the two library mouths
    engine = BuiltinEngine(jaw_smoothing=3)
    engine.plan = SimpleNamespace(track=SimpleNamespace(landmarks=landmarks), schedule=np.arange(n))
    engine.entries = [LibraryEntry(12, 0, 0, np.zeros((4, 4, 3), np.uint8)), LibraryEntry(13, 0, 0, np.zeros((4, 4, 3), np.uint8))]
    engine.lib_desc = np.array([L.mouth_descriptor(lm), L.mouth_descriptor(other)])
    engine.selection = np.arange(n) % 2  # the choice alternates between the two
    engine.t_open = engine.lib_desc[engine.selection, 0].astype(np.float32)
    engine.t_width = engine.lib_desc[engine.selection, 1].astype(np.float32)
    bg = lm[:, :2]

    from retalk.engines.builtin.engine import _JAW_ONLY as engine_jaw

    def chin_drop(i: int, smooth: bool) -> float:
        tgt = engine._target(i, bg)[0].copy()
        if smooth:
            tgt[engine_jaw] = engine._smoothed_jaw(i, bg)
        return float((tgt[L.CHIN] - bg[L.CHIN]) @ ey) / iod

    raw = [chin_drop(i, False) for i in (5, 6)]
    assert abs((raw[0] - raw[1]) - 0.05) < 0.005  # unsmoothed, the chin jumps by the entries' difference
    smooth = [chin_drop(i, True) for i in (5, 6)]
    assert abs(smooth[0] - smooth[1]) < 0.1 * abs(raw[0] - raw[1])  # averaged: it holds still
    assert abs(smooth[0] - 0.5 * (raw[0] + raw[1])) < 0.005
    # the lips are each frame's own choice: the smoothed points never include them
    # (mediapipe face-mesh indices: 0/17 outer and 13/14 inner lip centres, 61/291 the corners, 152 the chin)
    assert not {0, 17, 13, 14, 61, 291} & set(engine_jaw.tolist())
    assert {152, L.CHIN} <= set(engine_jaw.tolist())
    engine.jaw_smoothing = 0
    assert abs(chin_drop(5, True) - raw[0]) < 1e-9  # 0 turns it off
