"""Batched 3DMM coefficients and expression templates (face3d network replaced by a seeded stand-in)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from _bfm import expressions, face_landmarks, write_bfm  # noqa: E402
from _vrt_standins import Face3dStandIn  # noqa: E402
from retalk.errors import CheckpointError, InputError, NoFaceError  # noqa: E402
from retalk.face3d import align, coeffs, templates  # noqa: E402


def _frames(n: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(4)
    yy, xx = np.mgrid[0:256, 0:256]
    return [(128 + 100 * np.sin(xx / (9.0 + k) + yy / 17.0)[..., None] + rng.integers(-30, 31, (256, 256, 3)))
            .clip(0, 255).astype(np.uint8) for k in range(n)]


def _per_frame_reference(net: torch.nn.Module, frame: np.ndarray, lm: np.ndarray | None, lm3d: np.ndarray) -> np.ndarray:
    """VideoReTalking's per-frame loop as written in its inference.py (one frame at a time, float64 /255)."""
    if lm is None:
        pts = align.standard_points(lm3d, 256, 256)
    else:
        pts = lm.copy()
        pts[:, -1] = 256 - 1 - pts[:, -1]
    a = align.align_img(frame, pts, lm3d)
    x = torch.tensor(np.array(a.image) / 255.0, dtype=torch.float32).permute(2, 0, 1).unsqueeze(0)
    with torch.no_grad():
        return net(x)[0].numpy()


def test_extract_coeffs_batches_like_the_per_frame_loop(tmp_path) -> None:
    torch.set_num_threads(1)
    write_bfm(tmp_path)
    lm3d = align.load_lm3d(tmp_path)
    net = Face3dStandIn().eval()
    frames = _frames()
    lms = np.stack([face_landmarks(128, 135, 60, 4), face_landmarks(120, 130, 55, -3), face_landmarks(128, 128, 50, 0)])
    lms[2] = -1.0  # the reference's "no face" row
    res = coeffs.extract_coeffs(net, frames, lms, lm3d, batch_size=2)
    assert res.coeffs.shape == (3, 257) and res.coeffs.dtype == np.float32
    assert res.found.tolist() == [True, True, False]
    for k in range(3):
        want = _per_frame_reference(net, frames[k], None if k == 2 else lms[k], lm3d)
        np.testing.assert_allclose(res.coeffs[k], want, rtol=1e-5, atol=1e-6)
    assert res.trans_params[:, :2].tolist() == [[256, 256]] * 3
    np.testing.assert_allclose(res.trans_params[2, 2:], [0.796875, 128.0, 128.0], rtol=1e-5)  # the standard points
    # The same with NaN for the missing face, and batch size 1.
    lms[2] = np.nan
    again = coeffs.extract_coeffs(net, frames, lms, lm3d, batch_size=1)
    np.testing.assert_allclose(again.coeffs, res.coeffs, rtol=1e-5, atol=1e-6)


def test_row_layouts() -> None:
    c = np.arange(2 * 257, dtype=np.float32).reshape(2, 257)
    tp = np.array([[256, 256, 1.5, 120, 130], [256, 256, 1.4, 121, 131]], np.float32)
    fc = coeffs.FrameCoeffs(coeffs=c, trans_params=tp, found=np.array([True, True]))
    assert fc.rows.shape == (2, 262)
    np.testing.assert_array_equal(fc.rows[:, 257:], tp)
    np.testing.assert_array_equal(fc.part("exp"), c[:, 80:144])
    np.testing.assert_array_equal(fc.part("trans"), c[:, 254:257])
    st = fc.sadtalker_rows
    assert st.shape == (2, 73)
    np.testing.assert_array_equal(st[:, :64], c[:, 80:144])
    np.testing.assert_array_equal(st[:, 64:67], c[:, 224:227])
    np.testing.assert_array_equal(st[:, 67:70], c[:, 254:257])
    np.testing.assert_array_equal(st[:, 70:], tp[:, 2:])
    widths = [s.stop - s.start for s in (coeffs.SLICES.id, coeffs.SLICES.exp, coeffs.SLICES.tex, coeffs.SLICES.angle,
                                         coeffs.SLICES.gamma, coeffs.SLICES.trans)]
    assert widths == [80, 64, 80, 3, 27, 3]


@pytest.mark.parametrize("width", [64, 70])
def test_expression_templates(tmp_path, width: int) -> None:
    write_bfm(tmp_path, width=width)
    want = expressions(width=width)
    np.testing.assert_array_equal(templates.expression_template("neutral", tmp_path), want["expression_center"][0, :64])
    np.testing.assert_array_equal(templates.expression_template("smile", tmp_path), want["expression_mouth"][0, :64])


def test_missing_expression_mat_is_a_one_line_checkpoint_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("RETALK_CHECKPOINTS", str(tmp_path))
    with pytest.raises(CheckpointError) as err:
        templates.expression_template("neutral")
    msg = str(err.value)
    assert "\n" not in msg and "expression.mat" in msg and str(tmp_path) in msg and "VideoReTalking" in msg
    with pytest.raises(InputError):
        templates.expression_template("grin", tmp_path)


def test_expression_from_image(tmp_path) -> None:
    from retalk.face.landmarks68 import mesh_to_68
    from retalk.face.tracker import FaceMesh
    from retalk.samples import astronaut

    torch.set_num_threads(1)
    write_bfm(tmp_path)
    lm3d = align.load_lm3d(tmp_path)
    net = Face3dStandIn().eval()
    img = astronaut(256)
    mesh = FaceMesh(static=True)
    try:
        exp = templates.expression_from_image(img, net, lm3d, mesh)
        lm = mesh_to_68(mesh(img)[0]).astype(np.float64)
        with pytest.raises(NoFaceError):
            templates.expression_from_image(np.zeros((128, 128, 3), np.uint8), net, lm3d, mesh, name="smile photo")
    finally:
        mesh.close()
    assert exp.shape == (64,) and exp.dtype == np.float32
    np.testing.assert_allclose(exp, _per_frame_reference(net, img, lm, lm3d)[80:144], rtol=1e-5, atol=1e-6)


def test_expression_for(tmp_path) -> None:
    import cv2

    from retalk.samples import astronaut

    torch.set_num_threads(1)
    paths = write_bfm(tmp_path)
    lm3d = align.load_lm3d(tmp_path)
    net = Face3dStandIn().eval()
    np.testing.assert_array_equal(templates.expression_for("smile", checkpoints=tmp_path),
                                  expressions()["expression_mouth"][0])
    with pytest.raises(InputError):
        templates.expression_for("grin", checkpoints=tmp_path)
    with pytest.raises(InputError):
        templates.expression_for(paths["lm3d"], net, lm3d)  # a file, but not an image
    img = astronaut(256)
    file = tmp_path / "face.png"
    cv2.imwrite(str(file), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    np.testing.assert_allclose(templates.expression_for(file, net, lm3d), templates.expression_from_image(img, net, lm3d),
                               rtol=1e-6, atol=1e-7)
