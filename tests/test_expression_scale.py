"""``--expression-scale`` changes the mouth's spread in ``sync`` (and ``say --face``), and is range-checked.

Before the fix the built-in engine mapped the speech's openings onto the speaker's own openings by rank, which
cancels any scaling: 0.5, 1 and 2 rendered identical frames. Expected values come from outside the code:

* the scale multiplies each opening's deviation from the speaker's rest opening, so away from closures and
  clipping the spread (standard deviation) of the targets is exactly proportional to it (linearity);
* the rendered lips, measured again by the face mesh on the output frames, spread less at 0.5 and more at 2
  than at 1, by margins well outside the measurement's noise (on this clip: ratios about 0.72 and 1.57;
  both were 1.00 before the fix);
* the allowed range, 0 to 3, is ``animate``'s (``retalk.portrait.animate``), written here as literals.
"""
from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from _builtin_render import head_motion, render_in_memory

from retalk import cli
from retalk.engines.builtin.targets import SCALED_MARGIN, speaker_targets
from retalk.errors import EXIT_BAD_INPUT, InputError
from retalk.samples import astronaut, vowel_speech
from retalk.speech.mouth import mouth_track

FPS = 25.0
RATE = 16000  # Hz
OUT_OF_RANGE = [-5.0, -0.01, 3.01, 10.0, math.nan, math.inf]


def _speech_track(scale: float, seconds: float = 3.0):
    """The mouth track of 3 s of syllables (acoustics only, no phones) at expression scale ``scale``."""
    samples = vowel_speech(seconds, RATE, syllable_rate=3.0, seed=1)
    n = int(round(seconds * FPS))
    return mouth_track(samples, RATE, FPS, n, None, False, scale, None)


def _descriptors(openings: np.ndarray) -> np.ndarray:
    """Source mouth descriptors (m, 5) with these openings (face units) and a fixed width."""
    d = np.zeros((len(openings), 5), np.float32)
    d[:, 0] = openings
    d[:, 1] = 1.0
    return d


def _moving_speaker() -> np.ndarray:
    """A speaker whose lips open and close: 100 frames, 0.01 ... 0.17 face units, period 12 frames."""
    k = np.arange(100)
    return _descriptors(0.01 + 0.16 * (0.5 - 0.5 * np.cos(2 * np.pi * k / 12)))


def _open_std(scale: float, desc: np.ndarray):
    """(std of the target openings on frames that are not closures, the targets) at ``scale``."""
    t = speaker_targets(_speech_track(scale), desc, np.arange(len(desc)))
    return float(np.std(t.opening[~t.closed])), t


def test_rank_mapped_openings_scale_about_the_rest_opening():
    desc = _moving_speaker()
    s1, t1 = _open_std(1.0, desc)
    s_half, t_half = _open_std(0.5, desc)
    s2, t2 = _open_std(2.0, desc)
    assert t1.varied and s1 > 0.02
    # halving: no clipping can occur, so the spread halves exactly
    assert s_half / s1 == pytest.approx(0.5, rel=1e-4)
    # doubling: clipped at the top (the widest source opening plus a margin), so at most twice
    assert 1.5 < s2 / s1 <= 2.0 + 1e-6
    closed_level = min(t1.open_lo, float(desc[:, 0].min()), 0.005)
    top = float(desc[:, 0].max()) + SCALED_MARGIN * t1.open_range
    for t in (t_half, t1, t2):
        assert t.closed.any()
        assert np.all(t.opening[t.closed] == pytest.approx(closed_level))  # closures stay shut at any scale
        assert t.opening.min() >= closed_level - 1e-7
        assert t.opening.max() <= top + 1e-6
    assert t2.opening.max() > t1.opening.max()  # wider than the unscaled mouth ...
    assert t2.opening.max() > float(desc[:, 0].max())  # ... and than the source ever showed (within the margin)


def test_scale_zero_rests_the_mouth_between_closures():
    _, t = _open_std(0.0, _moving_speaker())
    assert np.allclose(t.opening[~t.closed], t.open_lo)  # the speaker's rest opening (5th percentile)
    assert np.all(t.opening[t.closed] <= 0.005)


def test_photo_openings_scale_linearly():
    desc = _descriptors(np.full(10, 0.03))  # one mouth shape: a photo, openings mapped linearly
    s1, t1 = _open_std(1.0, desc)
    s_half, _ = _open_std(0.5, desc)
    s2, _ = _open_std(2.0, desc)
    assert not t1.varied
    assert s_half / s1 == pytest.approx(0.5, rel=1e-4)
    assert s2 / s1 == pytest.approx(2.0, rel=1e-4)


# --- rendered: the lips measured by the face mesh on the built-in engine's output --------------------------

SIZE = 512  # frame size, pixels (at 256 the mesh's lip opening is too coarse to follow the render closely)


def _render(frames: list[np.ndarray], static: bool, samples: np.ndarray, scale: float) -> list[np.ndarray]:
    """The built-in engine's frames for ``samples`` (16 kHz, acoustics only), fed as :func:`retalk.pipeline.sync`
    feeds it, on frames held in memory."""
    return render_in_memory(frames, static, samples, RATE, FPS, scale=scale)[2]


def _lip_openings(frames: list[np.ndarray]) -> np.ndarray:
    """Inner-lip opening per frame (face units) from the face mesh; NaN where no face is found."""
    from retalk.face.landmarks import opening_series
    from retalk.face.tracker import FaceTracker

    tracker = FaceTracker(static=False)
    for f in frames:
        tracker.update(f)
    track = tracker.finish()
    return opening_series(track.landmarks, track.valid)


def test_rendered_lip_opening_spreads_with_the_scale():
    # a talking source video: the astronaut photo made to speak (scale 1), with a gentle head motion
    source = head_motion(_render([astronaut(SIZE)], True, vowel_speech(3.0, RATE, seed=0), 1.0))
    speech = vowel_speech(3.0, RATE, syllable_rate=3.0, seed=1)
    spread = {}
    for scale in (0.5, 1.0, 2.0):
        opening = _lip_openings(_render(source, False, speech, scale))
        assert np.isfinite(opening).mean() > 0.9
        spread[scale] = float(np.nanstd(opening))
    assert spread[1.0] > 0.02
    assert spread[0.5] < 0.85 * spread[1.0]
    assert spread[2.0] > 1.3 * spread[1.0]


# --- range checks ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", OUT_OF_RANGE)
def test_sync_refuses_an_out_of_range_scale_before_reading_anything(tmp_path, scale):
    from retalk.pipeline import SyncOptions, sync

    # neither input exists: the scale is checked first
    with pytest.raises(InputError, match="expression-scale") as err:
        sync(tmp_path / "face.mp4", tmp_path / "speech.wav", tmp_path / "out.mp4", SyncOptions(expression_scale=scale))
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize("scale", [0.0, 3.0])
def test_sync_accepts_the_ends_of_the_range(tmp_path, scale):
    from retalk.pipeline import SyncOptions, sync

    with pytest.raises(InputError) as err:  # fails later, on the missing face, not on the scale
        sync(tmp_path / "face.mp4", tmp_path / "speech.wav", tmp_path / "out.mp4", SyncOptions(expression_scale=scale))
    assert "expression-scale" not in str(err.value)


COMMANDS = {
    "sync": ["sync", "--face", "f.mp4", "--audio", "a.wav", "-o", "o.mp4"],
    "say --face": ["say", "--text", "hi", "--face", "f.mp4", "-o", "o.mp4"],
    "animate": ["animate", "--image", "p.png", "--audio", "a.wav", "-o", "o.mp4"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("value", ["-5", "3.5", "nan", "inf", "big"])
def test_cli_refuses_an_out_of_range_scale(command, value, capsys):
    parser = cli.build_parser()
    with pytest.raises(SystemExit) as ex:
        parser.parse_args([*COMMANDS[command], f"--expression-scale={value}"])
    assert ex.value.code == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--expression-scale" in err


@pytest.mark.parametrize("command", list(COMMANDS))
def test_cli_accepts_the_range(command):
    parser = cli.build_parser()
    for value in ("0", "0.5", "1", "2", "3"):
        assert parser.parse_args([*COMMANDS[command], "--expression-scale", value]).expression_scale == float(value)
    assert parser.parse_args([*COMMANDS[command], "--expression_scale", "2"]).expression_scale == 2.0


def test_cli_sync_exits_2_on_a_negative_scale(tmp_path):
    out = tmp_path / "o.mp4"
    proc = subprocess.run([sys.executable, "-m", "retalk", "sync", "--face", str(tmp_path / "f.mp4"), "--audio",
                           str(tmp_path / "a.wav"), "-o", str(out), "--expression-scale", "-5"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "--expression-scale" in proc.stderr
    assert not out.exists()


def test_the_parser_and_sync_share_animates_range():
    from retalk import cli_flags
    from retalk.pipeline import EXPRESSION_SCALE_RANGE

    assert cli_flags.EXPRESSION_SCALE_RANGE == EXPRESSION_SCALE_RANGE == (0.0, 3.0)  # retalk.portrait.animate's 0..3
