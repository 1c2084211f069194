"""From speech to a per-frame mouth target: how open, how wide, and where the lips must close.

Two sources are combined:

* **Acoustics** (always available, any language): the level of the 300–3000 Hz
  band, where the first formants carry most energy when the jaw is open, gives
  a continuous aperture; short deep dips of that level inside speech are stop
  closures and nasal murmurs (p, b, m and their neighbours), where the lips
  close. This holds for natural and synthesized speech alike. Without exact phones, how open a vowel
  is comes from its first formant, calibrated per recording (:mod:`retalk.speech.vowel_cues`): a loud
  i or u stays smaller than a loud a, whatever the voice.
* **Phones** with times, when known: the synthesizer's own phoneme events
  (exact) or a recognizer's phones (noisy). Visemes give lip width (spread vs
  rounded) and a per-class opening; bilabials force a closure.

Units: times in seconds, levels in dB, openings as a fraction of the speaker's
own range (0 = closed, 1 = their usual widest), widths in [-1 (rounded), 1 (spread)].
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d, maximum_filter1d, uniform_filter1d

from retalk.dsp import runs, stft
from retalk.speech.types import Phone, Viseme
from retalk.speech.visemes import phone_to_viseme
from retalk.speech.vowel_cues import VowelCues, vowel_cues

log = logging.getLogger(__name__)

FEATURE_RATE = 100.0
"""Frames per second of the acoustic features (10 ms hop)."""

# (opening fraction, width) per viseme class: opening relative to the speaker's range.
VISEME_SHAPE: dict[Viseme, tuple[float, float]] = {
    Viseme.SIL: (0.0, 0.0),
    Viseme.PBM: (0.0, 0.0),
    Viseme.FV: (0.12, 0.1),
    Viseme.TH: (0.25, 0.1),
    Viseme.DSTN: (0.25, 0.2),
    Viseme.KG: (0.4, 0.1),
    Viseme.CH: (0.3, -0.6),
    Viseme.R: (0.3, -0.4),
    Viseme.W: (0.18, -0.9),
    Viseme.AA: (1.0, 0.2),
    Viseme.EH: (0.65, 0.5),
    Viseme.IY: (0.35, 0.8),
    Viseme.AO: (0.85, -0.5),
    Viseme.OW: (0.6, -0.7),
    Viseme.UW: (0.3, -0.9),
}


@dataclass(frozen=True)
class MouthTrack:
    """Mouth target per output frame. Frame *i* covers audio time ``[i/fps, (i+1)/fps)``.

    ``opening``: (n,) in [0, 1.2 * amplitude], fraction of the speaker's range. ``width``: (n,) in [-1, 1].
    ``closed``: (n,) bool, lips must touch (bilabials, pauses). ``speech``: (n,) bool, voice activity.
    ``amplitude``: the expression scale ``opening`` was multiplied by (1 = natural). A consumer that maps
    openings by rank (which cancels any scaling, e.g. :func:`retalk.engines.builtin.targets.speaker_targets`)
    applies it again after its mapping.
    """

    fps: float
    opening: np.ndarray
    width: np.ndarray
    closed: np.ndarray
    speech: np.ndarray
    amplitude: float = 1.0

    def __len__(self) -> int:
        return len(self.opening)


@dataclass(frozen=True)
class AcousticFeatures:
    """Speech levels at :data:`FEATURE_RATE` Hz: ``band_db`` (300–3000 Hz), ``total_db``, ``centroid_hz``
    and ``high_db`` (above 3500 Hz, where the release burst of t, d, s is loud and that of p, b is weak)."""

    band_db: np.ndarray
    total_db: np.ndarray
    centroid_hz: np.ndarray
    high_db: np.ndarray


def acoustic_features(samples: np.ndarray, sample_rate: int = 16000) -> AcousticFeatures:
    """Band levels (dB) at 100 Hz with 25 ms Hann windows."""
    hop = int(sample_rate / FEATURE_RATE)
    nper = int(0.025 * sample_rate)
    n_frames = int(np.ceil(len(samples) / hop))
    f, z = stft(samples, sample_rate, nper, hop)
    p = np.abs(z) ** 2
    p = p[:, :n_frames]
    band = p[(f >= 300) & (f <= 3000)].sum(0)
    total = p[(f >= 80)].sum(0)
    cent = (p * f[:, None]).sum(0) / np.maximum(p.sum(0), 1e-20)
    high = p[f >= 3500].sum(0)
    return AcousticFeatures(10 * np.log10(band + 1e-12), 10 * np.log10(total + 1e-12), cent, 10 * np.log10(high + 1e-12))


def _to_frames(x: np.ndarray, fps: float, n: int, reduce: str = "mean") -> np.ndarray:
    """Resample a 100 Hz series to frames of ``1/fps`` s (mean or min over each frame's span)."""
    out = np.zeros(n, np.float64)
    for i in range(n):
        a = int(np.floor(i / fps * FEATURE_RATE))
        b = max(a + 1, int(np.floor((i + 1) / fps * FEATURE_RATE)))
        seg = x[min(a, len(x) - 1): min(b, len(x))] if len(x) else np.zeros(1)
        if seg.size == 0:
            seg = x[-1:]
        out[i] = seg.min() if reduce == "min" else seg.max() if reduce == "max" else seg.mean()
    return out


def aperture(feats: AcousticFeatures, range_db: float = 30.0) -> tuple[np.ndarray, np.ndarray]:
    """Continuous opening in [0, 1] from the band level, and voice activity, at 100 Hz.

    The top of the scale is the 95th percentile of the band level; ``range_db``
    below it maps to 0. Activity: total level above the noise floor by 12 dB.
    """
    band = uniform_filter1d(feats.band_db, 3)
    top = float(np.percentile(band, 95))
    floor = float(np.percentile(feats.total_db, 5))
    speech = uniform_filter1d(feats.total_db, 5) > max(floor + 12.0, float(np.percentile(feats.total_db, 95)) - 45.0)
    a = np.clip((band - (top - range_db)) / range_db, 0.0, 1.0) ** 1.3
    return a, speech


HEIGHT_FLOOR = 0.3  # a close or unvoiced sound opens the mouth this fraction of what its level alone would


def vowel_aperture(ap: np.ndarray, cues: VowelCues) -> np.ndarray:
    """The level's aperture (100 Hz, [0, 1]) shaded by how open the vowel sounds: ``ap`` times
    ``HEIGHT_FLOOR + (1 - HEIGHT_FLOOR) * height`` (``height``: F1 calibrated to this recording,
    :mod:`retalk.speech.vowel_cues`, over 30 ms). A loud i or u stays fairly small, a loud a opens fully,
    whatever the voice; unvoiced sounds (fricatives, whispers) keep the floor share of their level."""
    height = uniform_filter1d(cues.height[:len(ap)], 3)
    if len(height) < len(ap):
        height = np.pad(height, (0, len(ap) - len(height)))
    return ap * (HEIGHT_FLOOR + (1.0 - HEIGHT_FLOOR) * height)


def _near_silence_db(feats: AcousticFeatures) -> float:
    """Level (dB) below which sound counts as near-silent: 35 dB under the loud parts (95th percentile)."""
    return float(np.percentile(feats.total_db, 95)) - 35.0


def closures(feats: AcousticFeatures, speech: np.ndarray, depth_db: float = 10.0, context_s: float = 0.15,
             floor_db: float = 4.0, max_centroid_hz: float = 2000.0, max_release_db: float | None = -8.0) -> np.ndarray:
    """Boolean 100 Hz mask of lip closures (stop closures and nasal murmurs) inside speech.

    A closure is where the 300–3000 Hz level falls at least ``depth_db`` below
    the loudest level in the ``context_s`` before *and* after it, within
    ``floor_db`` of the dip's own minimum (the closure itself, not its slopes),
    and where the sound is not a fricative: hiss (s, sh, f) puts the spectral
    centroid above ``max_centroid_hz``, a closure's murmur or silence does not.
    Long pauses are silence and handled by the caller.
    """
    band = uniform_filter1d(feats.band_db, 2)
    k = max(1, int(context_s * FEATURE_RATE))
    before = maximum_filter1d(band, k, origin=(k - 1) // 2)  # max over the window ending here
    after = maximum_filter1d(band, k, origin=-(k // 2))  # max over the window starting here
    dip = (before - band >= depth_db) & (after - band >= depth_db)
    local_min = -maximum_filter1d(-band, 7)  # min over ±30 ms
    at_bottom = band <= local_min + floor_db
    quiet = feats.total_db < _near_silence_db(feats)  # near-silent closure: the centroid of noise means nothing
    not_fricative = (uniform_filter1d(feats.centroid_hz, 3) < max_centroid_hz) | quiet
    near_speech = maximum_filter1d(speech.astype(np.uint8), 2 * k + 1).astype(bool)
    found = dip & at_bottom & not_fricative & near_speech
    if max_release_db is not None:
        found = _drop_tongue_releases(found, feats, max_release_db)
    return found


def _drop_tongue_releases(found: np.ndarray, feats: AcousticFeatures, max_release_db: float,
                          release_s: float = 0.03) -> np.ndarray:
    """Remove closures whose release (the ``release_s`` after them) is loud above 3.5 kHz.

    The lips' release (p, b) is a weak, low burst; a tongue tip's (t, d) and a following
    hiss (ts, s) put most of the release's energy high. The level above 3.5 kHz relative to
    300–3000 Hz over the release: above ``max_release_db`` the closure was not the lips'.
    """
    out = found.copy()
    k = max(1, int(round(release_s * FEATURE_RATE)))
    for a, b in runs(found):
        hi = feats.high_db[b:b + k]
        lo = feats.band_db[b:b + k]
        if hi.size == 0:
            continue
        ratio = 10 * np.log10(np.sum(10 ** (hi / 10))) - 10 * np.log10(np.sum(10 ** (lo / 10)))
        if ratio > max_release_db:
            out[a:b] = False
    return out


def _phone_targets(phones: Sequence[Phone], n: int, fps: float,
                   notation: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame opening, width, forced closure and a 'has phone' mask from timed phones.

    Each phone's target sits at its centre; frames between centres interpolate
    (coarticulation). A bilabial closes the frame nearest its centre and any frame
    it covers by more than half.
    """
    centres, opens, widths = [], [], []
    closed = np.zeros(n, bool)
    covered = np.zeros(n, bool)
    for ph in phones:
        if ph.end <= ph.start:
            continue
        v = phone_to_viseme(ph.label, notation)
        o, w = VISEME_SHAPE[v]
        c = 0.5 * (ph.start + ph.end)
        centres.append(c)
        opens.append(o)
        widths.append(w)
        a, b = ph.start * fps, ph.end * fps
        covered[max(0, int(a)): min(n, int(np.ceil(b)))] = v != Viseme.SIL
        if v == Viseme.PBM:
            i = int(np.clip(np.floor(c * fps), 0, n - 1))
            closed[i] = True
            for j in range(max(0, int(a)), min(n, int(np.ceil(b)))):
                if min(b, j + 1) - max(a, j) > 0.5:
                    closed[j] = True
    if not centres:
        return np.zeros(n), np.zeros(n), closed, covered
    t = (np.arange(n) + 0.5) / fps
    order = np.argsort(centres)
    cs = np.asarray(centres)[order]
    return (np.interp(t, cs, np.asarray(opens)[order]), np.interp(t, cs, np.asarray(widths)[order]), closed, covered)


def _silent_gaps(feats: AcousticFeatures, speech: np.ndarray, max_s: float, max_centroid_hz: float = 2000.0) -> np.ndarray:
    """100 Hz mask of short gaps in the voice activity (under ``max_s``) that sound like a stop's closure:
    near-silent or low, not a fricative's hiss. (The release rule is not applied here: an aspirated p
    releases with broadband noise, and a silent gap is too often the lips' own closure to drop.)"""
    gaps = ~speech & ~pauses(speech, FEATURE_RATE, max_s)
    if not gaps.any():
        return gaps
    silence = _near_silence_db(feats)
    for a, b in runs(gaps):
        quiet = float(np.mean(feats.total_db[a:b])) < silence
        if not quiet and float(np.mean(feats.centroid_hz[a:b])) >= max_centroid_hz:
            gaps[a:b] = False  # hiss: a fricative, the lips stay apart
    return gaps


def pauses(speech: np.ndarray, fps: float, min_s: float) -> np.ndarray:
    """Frames of pauses long enough to rest the mouth closed: runs of frames without speech lasting at
    least ``min_s`` seconds, and any at the start or end. Shorter gaps between words are not closures:
    there the mouth follows the speech around them, unless the gap sounds like the lips' own closure (a
    silent stop released low, see ``mouth_track``)."""
    rest = ~speech
    if min_s <= 0 or not rest.any():
        return rest
    out = rest.copy()
    for a, b in runs(rest):
        if a > 0 and b < len(rest) and (b - a) < min_s * fps:
            out[a:b] = False
    return out


_NOT_LIPS = {Viseme.DSTN, Viseme.KG, Viseme.TH, Viseme.CH, Viseme.R}


def _consonant_frames(phones: Sequence[Phone], n: int, fps: float, notation: str | None) -> np.ndarray:
    """Frames whose centre falls in a phone made with the tongue (not the lips)."""
    out = np.zeros(n, bool)
    for ph in phones:
        if phone_to_viseme(ph.label, notation) in _NOT_LIPS:
            a = int(np.ceil(ph.start * fps - 0.5))
            b = int(np.ceil(ph.end * fps - 0.5))
            out[max(0, a): min(n, b)] = True
    return out


def timed_phones(samples: np.ndarray, sample_rate: int, phones: Sequence[Phone] | None = None,
                 notation: str | None = "espeak", recognize: bool = True,
                 recognized: Callable[[], Sequence[Phone]] | None = None,
                 ) -> tuple[Sequence[Phone] | None, bool, str | None]:
    """The phones to drive the mouth with: ``(phones, exact, notation)``.

    Given ``phones`` (a synthesizer's own timings, in ``notation``) are exact. Otherwise,
    with ``recognize``, pocketsphinx's English phones (ARPAbet, approximate): ``recognized()`` when
    given (recognition already started elsewhere, e.g. in a child process), else recognized here;
    if recognition is off or fails, ``None`` and the mouth follows the acoustics alone.
    """
    if phones is not None:
        return phones, True, notation
    if not recognize:
        return None, False, None
    try:
        if recognized is not None:
            return recognized(), False, "arpabet"
        from retalk.speech.phones import recognize_phones

        return recognize_phones(samples, sample_rate), False, "arpabet"
    except Exception as exc:  # noqa: BLE001 - recognition is an aid; acoustics alone still work
        log.warning("phone recognition failed (%s); using acoustic features only", exc)
        return None, False, None


def mouth_track(samples: np.ndarray, sample_rate: int, fps: float, n_frames: int,
                phones: Sequence[Phone] | None = None, phones_exact: bool = False,
                amplitude: float = 1.0, notation: str | None = None, min_pause_s: float = 0.12) -> MouthTrack:
    """Build the per-frame mouth target for ``n_frames`` frames at ``fps``.

    ``phones``: timed phones (from the synthesizer, ``phones_exact=True``, or a
    recognizer), in ``notation`` ("espeak", "arpabet", "ipa" or None to guess).
    ``amplitude`` scales every opening (expression scale). Without exact phones, gaps in the speech
    shorter than ``min_pause_s`` seconds do not close the mouth (see :func:`pauses`).
    """
    feats = acoustic_features(samples, sample_rate)
    ap, speech100 = aperture(feats)
    clo100 = closures(feats, speech100)
    gap100 = _silent_gaps(feats, speech100, min_pause_s)
    ap_f = _to_frames(ap, fps, n_frames, "mean")
    if not (phones and phones_exact):  # without exact phones, how open a vowel is comes from its sound
        vow_f = _to_frames(vowel_aperture(ap, vowel_cues(samples, sample_rate, len(ap))), fps, n_frames, "mean")
    speech = _to_frames(speech100.astype(float), fps, n_frames, "mean") > 0.4
    # a closure closes a frame it covers for at least a fifth of the frame (20 ms at 25 fps)
    clo_f = _to_frames(clo100.astype(float), fps, n_frames, "mean") >= 0.2
    # frames without voice close in pauses and in short gaps that are silent (a stop's closure the dip rule
    # missed), not in short gaps filled with a soft fricative's hiss
    rest = pauses(speech, fps, min_pause_s) | (~speech & (_to_frames(gap100.astype(float), fps, n_frames, "max") > 0))
    if phones:
        po, pw, pclosed, covered = _phone_targets(phones, n_frames, fps, notation)
        if phones_exact:
            opening = np.where(covered, po * (0.55 + 0.55 * ap_f), 0.0)
            closed = pclosed | ~covered
        else:
            opening = np.where(speech, 0.5 * po + 0.5 * vow_f, 0.0)
            # an acoustic closure where the recognizer heard another consonant (t, d, k, s, ...) is the
            # tongue, not the lips: the mouth nearly closes instead of closing
            other = _consonant_frames(phones, n_frames, fps, notation)
            veto = clo_f & other & ~pclosed
            opening = np.where(veto, np.minimum(opening, 0.12), opening)
            closed = pclosed | (clo_f & ~veto) | rest
        width = pw
    else:
        opening = np.where(speech, vow_f, 0.0)
        closed = clo_f | rest
        width = np.zeros(n_frames)
    # coarticulation: articulators move smoothly (Gaussian, sigma 70 ms); lips approach and leave a closure
    # over a frame
    sm = gaussian_filter1d(opening, sigma=max(0.07 * fps, 0.5), mode="nearest")
    near = np.zeros_like(closed)
    near[1:] |= closed[:-1]
    near[:-1] |= closed[1:]
    sm = np.where(near & ~closed, 0.6 * sm, sm)
    opening = np.where(closed, 0.0, np.maximum(sm, 0.0)) * amplitude
    width = np.convolve(np.pad(width, 1, mode="edge"), [0.25, 0.5, 0.25], mode="valid")
    log.debug("mouth track: %d frames, %.0f%% speech, %d closed", n_frames, 100 * speech.mean(), int(closed.sum()))
    return MouthTrack(float(fps), opening.astype(np.float32), np.clip(width, -1, 1).astype(np.float32), closed, speech,
                      float(amplitude))

