"""Our small DSP functions against scipy, and the imports the dubbing path avoids."""
import subprocess
import sys

import numpy as np
import pytest
import scipy.signal

from retalk import dsp


@pytest.mark.parametrize("shape", [(50,), (30, 478, 3), (9, 4)])
@pytest.mark.parametrize("window,order", [(9, 2), (5, 3), (3, 2)])
def test_savgol_matches_scipy(shape, window, order):
    rng = np.random.default_rng(1)
    x = rng.normal(size=shape) * 100
    ours = dsp.savgol(x, window, order)
    ref = scipy.signal.savgol_filter(x, window, order, axis=0)
    np.testing.assert_allclose(ours, ref, atol=1e-9)
    assert dsp.savgol(x.astype(np.float32), window, order).dtype == np.float32
    if x.ndim == 3:  # a strided selection, as the tracker passes (columns of points picked by a mask)
        sel = np.arange(478) % 3 == 0
        np.testing.assert_allclose(dsp.savgol(x[:, sel], window, order),
                                   scipy.signal.savgol_filter(x[:, sel], window, order, axis=0), atol=1e-9)


def test_savgol_keeps_polynomials():
    t = np.arange(20, dtype=float)
    x = 0.5 * t**2 - 3 * t + 1
    np.testing.assert_allclose(dsp.savgol(x, 7, 2), x, atol=1e-9)
    with pytest.raises(ValueError):
        dsp.savgol(x, 6, 2)


@pytest.mark.parametrize("n", [16000, 16123, 401])  # scipy shrinks the window for signals shorter than it
def test_stft_matches_scipy(n):
    x = np.random.default_rng(2).normal(size=n)
    f, z = dsp.stft(x, 16000, 400, 160)
    f_ref, _, z_ref = scipy.signal.stft(x, fs=16000, window="hann", nperseg=400, noverlap=240,
                                        boundary="zeros", padded=True)
    np.testing.assert_allclose(f, f_ref)
    assert z.shape == z_ref.shape
    np.testing.assert_allclose(z, z_ref, atol=1e-12)


def test_stft_sinusoid_magnitude():
    sr = 16000
    x = np.sin(2 * np.pi * 1000 * np.arange(sr) / sr)
    f, z = dsp.stft(x, sr, 400, 160)
    k = int(np.argmin(np.abs(f - 1000)))
    assert abs(np.abs(z[k, 10:-10]).mean() - 0.5) < 0.01


def test_dubbing_path_imports_stay_light():
    """Start-up cost: the sync path needs neither scipy.signal (about 1 s) nor matplotlib.pyplot
    (mediapipe imports it for plotting helpers); pyplot still works normally afterwards."""
    code = (
        "import sys\n"
        "import retalk.pipeline, retalk.cli, retalk.engines.builtin.engine\n"
        "from retalk.face.tracker import _import_face_mesh\n"
        "_import_face_mesh()\n"
        "assert 'scipy.signal' not in sys.modules, 'scipy.signal imported'\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n"
        "import matplotlib\n"
        "matplotlib.use('Agg')\n"
        "import matplotlib.pyplot as plt\n"
        "from mediapipe.python.solutions import drawing_utils\n"
        "assert drawing_utils.plt.figure is plt.figure\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_runs_of_true_values():
    from retalk.dsp import runs

    assert runs(np.array([0, 1, 1, 0, 1, 0, 0, 1], bool)) == [(1, 3), (4, 5), (7, 8)]
    assert runs(np.ones(3, bool)) == [(0, 3)]
    assert runs(np.zeros(4, bool)) == []
    assert runs(np.array([], bool)) == []
