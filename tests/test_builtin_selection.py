"""The built-in engine's appearance measure (its jumps go to look-alike mouths) and its geometry (the jaw)."""
import numpy as np

from retalk.engines.builtin.library import Library, LibraryEntry, mouth_patches, pairwise_rms
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


def test_the_jaw_keeps_the_frames_own_sideways_place():
    from retalk.engines.builtin.geometry import MOBILE, place
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
    tgt = place(lm, entry, identity)
    side = lambda p: float((p - lm[L.CHIN]) @ ex) / iod  # noqa: E731
    down = lambda p: float((p - lm[L.CHIN]) @ ey) / iod  # noqa: E731
    assert abs(side(tgt[L.CHIN])) < 1e-6  # the chin stays where the frame's own head puts it ...
    assert down(tgt[L.CHIN]) > 0.049  # ... and drops as the entry says
    lip = L.UPPER_OUTER[len(L.UPPER_OUTER) // 2]
    assert abs(side(tgt[lip]) - side(entry[lip])) < 1e-6  # the lips are the entry's
    assert np.array_equal(tgt[L.STABLE], lm[L.STABLE])  # eyes and nose untouched


def test_the_jaw_is_averaged_over_neighbouring_frames_and_the_lips_are_not():
    from retalk.engines.builtin.geometry import JAW_ONLY, FrameTargets
    from retalk.face import landmarks as L

    lm = FaceMesh(static=True)(astronaut(384))[0].astype(np.float64)
    iod = float(L.interocular(lm))
    _, _, ey = L.face_frame(lm[:, :2])
    other = lm.copy()  # a library mouth whose jaw line sits 0.05 inter-ocular distances lower
    jaw = np.array(sorted(set(L.JAW[3:-3]) | {L.CHIN}))
    other[jaw, :2] += 0.05 * iod * ey
    n = 12
    landmarks = np.stack([lm] * n + [lm, other])  # frames 0..11: the video; 12, 13: the two library mouths
    entries = tuple(LibraryEntry(k, 0, 0, np.zeros((4, 4, 3), np.uint8)) for k in (12, 13))
    library = Library(entries, 1, np.array([L.mouth_descriptor(lm), L.mouth_descriptor(other)]))
    selection = np.arange(n) % 2  # the choice alternates between the two

    def geometry(jaw_smoothing: int) -> FrameTargets:
        opening, width = library.descriptors[selection, 0], library.descriptors[selection, 1]
        return FrameTargets(landmarks, np.arange(n), library, selection, opening, width, jaw_smoothing)

    smoothed, off = geometry(3), geometry(0)
    bg = lm[:, :2]

    def chin_drop(g: FrameTargets, i: int, smooth: bool) -> float:
        tgt = g.frame(i, bg)[0] if smooth else g.target(i, bg)[0]
        return float((tgt[L.CHIN] - bg[L.CHIN]) @ ey) / iod

    raw = [chin_drop(smoothed, i, False) for i in (5, 6)]
    assert abs((raw[0] - raw[1]) - 0.05) < 0.005  # unsmoothed, the chin jumps by the entries' difference
    smooth = [chin_drop(smoothed, i, True) for i in (5, 6)]
    assert abs(smooth[0] - smooth[1]) < 0.1 * abs(raw[0] - raw[1])  # averaged: it holds still
    assert abs(smooth[0] - 0.5 * (raw[0] + raw[1])) < 0.005
    # the lips are each frame's own choice: the smoothed points never include them
    # (mediapipe face-mesh indices: 0/17 outer and 13/14 inner lip centres, 61/291 the corners, 152 the chin)
    assert not {0, 17, 13, 14, 61, 291} & set(JAW_ONLY.tolist())
    assert {152, L.CHIN} <= set(JAW_ONLY.tolist())
    assert abs(chin_drop(off, 5, True) - raw[0]) < 1e-9  # 0 turns it off
