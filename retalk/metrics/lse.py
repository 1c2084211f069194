"""LSE-D / LSE-C lip-sync scores with SyncNet (Chung & Zisserman 2016), as Wav2Lip reports them.

Recipe (``SyncNetInstance.evaluate`` of syncnet_python):

* video: 25 fps face crops, 224×224, **BGR** uint8, fed as float 0..255 with no
  normalisation, windows of 5 frames → ``forward_lip`` (N, 3, 5, 224, 224);
* audio: 16 kHz mono at int16 scale → MFCC (13 coefficients at 100 Hz, see
  :func:`mfcc`), windows of 20 MFCC frames (0.2 s) starting at 4·v for video
  window v → ``forward_aud`` (N, 1, 13, 20);
* ``min_length = min(frames, floor(samples / 640))``; windows v = 0 … min_length − 6;
* for each shift k = 0 … 2·vshift the distance between video window i and audio
  window i + k − vshift (audio features zero-padded by vshift rows at both
  ends) is ``‖f_v − f_a + 1e−6‖₂``; ``mdist[k]`` is its mean over windows;
* **LSE-D** = min_k mdist, **LSE-C** = median_k mdist − min_k mdist,
  AV offset = vshift − argmin_k mdist (positive: audio early, see
  :mod:`retalk.metrics.avsync`).

A video at another frame rate is first resampled to 25 fps (nearest frame, see
:func:`syncnet_frame_index`); :func:`lse_of_video` does the whole recipe from a
video's frames, tracked face boxes and 16 kHz sound.

Torch is imported only by :func:`lse_scores`; :func:`mfcc` and the crop helpers
need numpy, scipy and OpenCV only.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from retalk.dsp import preemphasis, spectra
from retalk.errors import InputError, NoFaceError

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
"""Audio rate SyncNet expects (Hz)."""
FPS = 25
"""Video rate SyncNet expects (frames per second)."""
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS
"""640 audio samples per video frame."""
MFCC_PER_FRAME = 4
"""MFCC frames (10 ms) per video frame (40 ms)."""
CROP_SIZE = 224
BOX_SMOOTH = 13
"""Median filter (frames) over the crop's size and centre, as syncnet_python's pipeline."""

__all__ = ["LSEResult", "crop_faces_syncnet", "lse_of_video", "lse_scores", "mel_filterbank", "mfcc",
           "nearest_face_boxes", "syncnet_crop_boxes", "syncnet_frame_index", "to_int16_scale"]


# --------------------------------------------------------------------------------------------
# MFCC (python_speech_features.mfcc defaults)
# --------------------------------------------------------------------------------------------

def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def _mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(n_filters: int = 26, n_fft: int = 512, sample_rate: int = 16000,
                   low_hz: float = 0.0, high_hz: float | None = None) -> np.ndarray:
    """Triangular mel filters on FFT bins, (n_filters, n_fft//2 + 1).

    Edges: ``n_filters + 2`` points evenly spaced in mel (HTK formula
    2595·log10(1 + f/700)) from ``low_hz`` to ``high_hz`` (default Nyquist),
    mapped to bins ``floor((n_fft + 1)·f / sample_rate)``; filter j rises
    linearly from 0 at edge j to 1 at edge j+1 and falls to 0 at edge j+2
    (right edge bin excluded).
    """
    high = sample_rate / 2.0 if high_hz is None else float(high_hz)
    if high > sample_rate / 2.0:
        raise ValueError("high_hz exceeds the Nyquist frequency")
    mels = np.linspace(_hz_to_mel(low_hz), _hz_to_mel(high), n_filters + 2)
    edges = np.floor((n_fft + 1) * _mel_to_hz(mels) / sample_rate)
    bins = np.arange(n_fft // 2 + 1, dtype=np.float64)
    fb = np.zeros((n_filters, n_fft // 2 + 1))
    for j in range(n_filters):
        lo, mid, hi = edges[j], edges[j + 1], edges[j + 2]
        up = (bins >= lo) & (bins < mid)
        down = (bins >= mid) & (bins < hi)
        fb[j, up] = (bins[up] - lo) / (mid - lo)
        fb[j, down] = (hi - bins[down]) / (hi - mid)
    return fb


def mfcc(signal: np.ndarray, sample_rate: int = 16000, win_s: float = 0.025, step_s: float = 0.01,
         n_ceps: int = 13, n_filters: int = 26, n_fft: int = 512, preemph: float = 0.97,
         lifter: int = 22, append_energy: bool = True) -> np.ndarray:
    """MFCC features, (n_frames, n_ceps), as ``python_speech_features.mfcc(signal, sample_rate)``.

    Defaults: 25 ms rectangular frames every 10 ms (400/160 samples at 16 kHz,
    i.e. 100 frames per second), ``n_frames = 1 + ceil((N − 400) / 160)`` with
    the tail zero-padded (1 frame when N ≤ 400); pre-emphasis 0.97; power
    spectrum ``|rfft(frame, 512)|² / 512``; 26 mel filters 0–8000 Hz; natural
    log (zeros replaced by machine epsilon); orthonormal DCT-II, first 13
    coefficients; sinusoidal lifter 22; coefficient 0 replaced by the log of the
    frame's total spectral energy.  The signal's scale matters (SyncNet expects
    int16 scale, see :func:`to_int16_scale`).
    """
    from scipy.fft import dct

    x = np.asarray(signal, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("empty signal")
    frame_len = int(np.floor(win_s * sample_rate + 0.5))
    frame_step = int(np.floor(step_s * sample_rate + 0.5))
    spec = spectra(preemphasis(x, preemph), n_fft, frame_step, frame_len=frame_len, window=None, center=False,
                   pad_end=True)
    power = np.abs(np.ascontiguousarray(spec.T)) ** 2 / n_fft  # (n_frames, n_fft // 2 + 1)
    eps = np.finfo(np.float64).eps
    energy = power.sum(axis=1)
    energy = np.where(energy == 0, eps, energy)
    feat = power @ mel_filterbank(n_filters, n_fft, sample_rate).T
    feat = np.where(feat == 0, eps, feat)
    ceps = dct(np.log(feat), type=2, axis=1, norm="ortho")[:, :n_ceps]
    if lifter > 0:
        ceps = ceps * (1.0 + (lifter / 2.0) * np.sin(np.pi * np.arange(n_ceps) / lifter))
    if append_energy:
        ceps[:, 0] = np.log(energy)
    return ceps


def to_int16_scale(audio: np.ndarray) -> np.ndarray:
    """Audio as float64 on the int16 scale, as SyncNet's ``wavfile.read`` of a s16 wav gives it.

    Integer arrays are taken as they are.  Float arrays whose peak is at most
    1.0 are taken as [-1, 1] samples (the project's convention) and scaled by
    32768; every float array is then rounded and clipped to the int16 range,
    as writing a 16-bit PCM file would.
    """
    a = np.asarray(audio)
    if a.ndim == 2 and 1 in a.shape:
        a = a.reshape(-1)
    if a.ndim != 1:
        raise ValueError(f"expected mono audio (n,), got shape {np.shape(audio)}")
    if np.issubdtype(a.dtype, np.integer):
        return a.astype(np.float64)
    x = a.astype(np.float64)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak <= 1.0:
        x = x * 32768.0
    return np.clip(np.round(x), -32768.0, 32767.0)


# --------------------------------------------------------------------------------------------
# Face crops
# --------------------------------------------------------------------------------------------

def crop_faces_syncnet(frames: np.ndarray, boxes: np.ndarray, crop_scale: float = 0.4, smooth: int = 13,
                       rgb: bool = True, pad_value: int = 110) -> np.ndarray:
    """Face crops for SyncNet, as syncnet_python's ``run_pipeline.py`` makes them: (T, 224, 224, 3) BGR uint8.

    ``frames``: (T, H, W, 3) uint8, RGB when ``rgb`` (the project's convention)
    else BGR; ``boxes``: (T, 4) face boxes (x1, y1, x2, y2) in pixels, one per
    frame.  Half-size ``s = max(w, h) / 2`` and the centre are median-filtered
    over ``smooth`` frames (scipy ``medfilt``, zero-padded ends as the reference;
    1 disables), the frame is padded by ``int(s·(1 + 2·crop_scale))`` pixels of
    value ``pad_value``, and rows ``y − s … y + s·(1 + 2·crop_scale)``, columns
    ``x − s·(1 + crop_scale) … x + s·(1 + crop_scale)`` are resized (bilinear)
    to 224×224.
    """
    import cv2
    from scipy.signal import medfilt

    frames = np.asarray(frames)
    b = np.asarray(boxes, dtype=np.float64)
    if frames.ndim != 4 or frames.shape[3] != 3:
        raise ValueError(f"expected frames (T, H, W, 3), got {frames.shape}")
    if b.shape != (frames.shape[0], 4):
        raise ValueError(f"expected boxes ({frames.shape[0]}, 4), got {b.shape}")
    s = np.maximum(b[:, 3] - b[:, 1], b[:, 2] - b[:, 0]) / 2.0
    cy = (b[:, 1] + b[:, 3]) / 2.0
    cx = (b[:, 0] + b[:, 2]) / 2.0
    if smooth > 1:
        s, cy, cx = (medfilt(v, kernel_size=smooth) for v in (s, cy, cx))
    out = np.empty((frames.shape[0], CROP_SIZE, CROP_SIZE, 3), dtype=np.uint8)
    for t, frame in enumerate(frames):
        img = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR) if rgb else frame
        bs = float(s[t])
        bsi = int(bs * (1 + 2 * crop_scale))
        padded = np.pad(img, ((bsi, bsi), (bsi, bsi), (0, 0)), mode="constant", constant_values=pad_value)
        my, mx = cy[t] + bsi, cx[t] + bsi
        face = padded[int(my - bs):int(my + bs * (1 + 2 * crop_scale)),
                      int(mx - bs * (1 + crop_scale)):int(mx + bs * (1 + crop_scale))]
        if face.size == 0:
            raise InputError(f"frame {t}: empty face crop (box {b[t].tolist()})")
        out[t] = cv2.resize(face, (CROP_SIZE, CROP_SIZE))
    return out


def syncnet_frame_index(n_frames: int, fps: float) -> np.ndarray:
    """Which source frame SyncNet sees at each 25 fps instant: (n25,) int64 indices into ``n_frames``.

    Frame *k* of the 25 fps video shows the source frame nearest to time k / 25 s
    (``floor(k · fps / 25 + 0.5)``, clipped to the last frame), as ffmpeg's fps filter resamples
    for syncnet_python; ``n25 = floor(n_frames · 25 / fps)`` (at least 1), or ``n_frames`` when
    ``fps`` is 25 (within 1e-6).
    """
    if n_frames < 1 or not fps > 0:
        raise ValueError(f"need n_frames >= 1 and fps > 0, got n_frames={n_frames}, fps={fps}")
    n25 = n_frames if abs(fps - FPS) < 1e-6 else max(1, int(math.floor(n_frames * FPS / fps + 1e-9)))
    return np.minimum(np.floor(np.arange(n25) * fps / FPS + 0.5).astype(np.int64), n_frames - 1)


def nearest_face_boxes(boxes: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``boxes`` (T, 4) with each frame without a face (``valid`` False) given the box of the nearest frame with one.

    Ties go to the later frame.  Raises :class:`NoFaceError` when no frame has a face.
    """
    ok = np.asarray(valid, dtype=bool)
    have = np.flatnonzero(ok)
    if have.size == 0:
        raise NoFaceError("no face in the rendered video")
    t = np.arange(len(ok))
    after = have[np.clip(np.searchsorted(have, t), 0, len(have) - 1)]
    before = have[np.clip(np.searchsorted(have, t) - 1, 0, len(have) - 1)]
    nearest = np.where(np.abs(before - t) < np.abs(after - t), before, after)
    return np.asarray(boxes)[nearest]


def syncnet_crop_boxes(boxes: np.ndarray, valid: np.ndarray, fps: float,
                       smooth: int = BOX_SMOOTH) -> tuple[np.ndarray, np.ndarray]:
    """The 25 fps frame indices (see :func:`syncnet_frame_index`) and SyncNet's square crop boxes at them.

    ``boxes``: (T, 4) tracked face boxes (x1, y1, x2, y2) in pixels of a ``fps`` video, ``valid``:
    (T,) which frames have a face (the others take the nearest frame's box).  At the 25 fps
    instants the half-size ``s = max(w, h) / 2`` and the centre are median-filtered over
    ``smooth`` frames; returns ``(src_idx (n25,), squares (n25, 4) = (cx − s, cy − s, cx + s, cy + s))``,
    which :func:`crop_faces_syncnet` with ``smooth=1`` crops as syncnet_python would.
    """
    from scipy.signal import medfilt

    src_idx = syncnet_frame_index(len(valid), fps)
    b = nearest_face_boxes(boxes, valid)[src_idx].astype(np.float64)
    s = np.maximum(b[:, 3] - b[:, 1], b[:, 2] - b[:, 0]) / 2.0
    cy, cx = (b[:, 1] + b[:, 3]) / 2.0, (b[:, 0] + b[:, 2]) / 2.0
    if smooth > 1:
        s, cy, cx = (medfilt(v, kernel_size=smooth) for v in (s, cy, cx))
    return src_idx, np.stack([cx - s, cy - s, cx + s, cy + s], axis=1)


def lse_of_video(frames: Iterable[np.ndarray], boxes: np.ndarray, valid: np.ndarray, fps: float,
                 audio16k: np.ndarray, model: Any) -> LSEResult:
    """LSE of a whole video: 25 fps resampling, SyncNet crops, then :func:`lse_scores`.

    ``frames``: the video's (H, W, 3) uint8 RGB frames in order (read once, lazily; reading stops
    after the last frame needed); ``boxes`` (T, 4), ``valid`` (T,): its tracked face boxes in
    pixels and which frames have a face; ``fps``: its frame rate; ``audio16k``: its sound, mono
    16 kHz starting with frame 0; ``model``: a loaded SyncNet (see :func:`lse_scores`).
    Raises :class:`NoFaceError` when no frame has a face.
    """
    src_idx, squares = syncnet_crop_boxes(boxes, valid, fps)
    n25 = len(src_idx)
    crops = np.empty((n25, CROP_SIZE, CROP_SIZE, 3), np.uint8)
    k = 0
    for j, frame in enumerate(frames):
        while k < n25 and src_idx[k] == j:
            crops[k] = crop_faces_syncnet(frame[None], squares[k:k + 1], smooth=1)[0]
            k += 1
        if k >= n25:
            break
    return lse_scores(crops[:k], audio16k, model)


# --------------------------------------------------------------------------------------------
# LSE
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LSEResult:
    """SyncNet scores of one clip.

    ``lse_d``: min over shifts of the mean embedding distance (lower is better
    sync); ``lse_c``: median minus min of those means (higher is better);
    ``offset``: AV offset in frames (``vshift − argmin``; 0 when in sync,
    positive when the audio is early); ``distances``: mean distance per shift
    k = 0 … 2·vshift (the audio window of video window i is i + k − vshift);
    ``window_distances``: (n_windows, 2·vshift + 1) per-window distances;
    ``framewise_confidence``: median(distances) − window distance at the best
    shift, median-filtered over 9 windows (as the reference prints it).
    """

    lse_d: float
    lse_c: float
    offset: int
    distances: np.ndarray
    window_distances: np.ndarray
    framewise_confidence: np.ndarray

    @property
    def n_windows(self) -> int:
        """Number of 5-frame video windows scored."""
        return int(self.window_distances.shape[0])


def _model_device(model: Any) -> Any:
    try:
        return next(iter(model.parameters())).device
    except (AttributeError, StopIteration, TypeError):
        return "cpu"


def lse_scores(frames_bgr_224: np.ndarray, audio16k: np.ndarray, model: Any, vshift: int = 15,
               batch: int = 20) -> LSEResult:
    """LSE-D, LSE-C and AV offset of a clip with a loaded SyncNet.

    ``frames_bgr_224``: (T, 224, 224, 3) uint8 **BGR** face crops at 25 fps
    (see :func:`crop_faces_syncnet`).  ``audio16k``: mono 16 kHz samples, int16
    or float (see :func:`to_int16_scale`), starting with frame 0.  ``model``:
    any object with ``forward_lip`` (N, 3, 5, H, W) → (N, D) and
    ``forward_aud`` (N, 1, 13, 20) → (N, D) taking float32 torch tensors (e.g.
    ``retalk.checkpoints.load("syncnet")``), in eval mode.  ``batch``: windows
    per forward call (memory only; the result does not depend on it).
    """
    import torch

    frames = np.asarray(frames_bgr_224)
    if frames.ndim != 4 or frames.shape[3] != 3:
        raise ValueError(f"expected frames (T, H, W, 3), got {frames.shape}")
    if frames.shape[1:3] != (CROP_SIZE, CROP_SIZE):
        log.warning("SyncNet expects 224x224 crops, got %dx%d", frames.shape[2], frames.shape[1])
    audio = to_int16_scale(audio16k)
    if getattr(model, "training", False):
        log.warning("lse_scores: the SyncNet model is in training mode; call model.eval() first")

    ceps = mfcc(audio, SAMPLE_RATE).T  # (13, n_mfcc)
    min_length = min(frames.shape[0], audio.size // SAMPLES_PER_FRAME)
    n_win = min_length - 5
    if n_win < 1:
        raise InputError(f"clip too short for SyncNet: {frames.shape[0]} frames and {audio.size / SAMPLE_RATE:.2f} s "
                         "of audio; at least 6 frames (0.24 s) of both are needed")
    device = _model_device(model)

    vid_feats: list[np.ndarray] = []
    aud_feats: list[np.ndarray] = []
    with torch.no_grad():
        for start in range(0, n_win, batch):
            idx = range(start, min(n_win, start + batch))
            lip = np.stack([frames[v:v + 5] for v in idx])  # (B, 5, H, W, 3)
            lip_t = torch.from_numpy(np.ascontiguousarray(lip.transpose(0, 4, 1, 2, 3))).float()
            aud = np.stack([ceps[:, MFCC_PER_FRAME * v:MFCC_PER_FRAME * v + 20] for v in idx])[:, None]
            aud_t = torch.from_numpy(np.ascontiguousarray(aud)).float()
            fv = model.forward_lip(lip_t.to(device))
            fa = model.forward_aud(aud_t.to(device))
            vid_feats.append(fv.detach().float().cpu().numpy().reshape(len(idx), -1))
            aud_feats.append(fa.detach().float().cpu().numpy().reshape(len(idx), -1))
    fv_all = np.concatenate(vid_feats).astype(np.float64)
    fa_all = np.concatenate(aud_feats).astype(np.float64)
    return _scores_from_features(fv_all, fa_all, vshift)


def _scores_from_features(video_feats: np.ndarray, audio_feats: np.ndarray, vshift: int) -> LSEResult:
    """LSE from per-window embeddings (n_windows, D) of both streams."""
    from scipy.signal import medfilt

    n, d = video_feats.shape
    width = 2 * vshift + 1
    padded = np.zeros((n + 2 * vshift, d))
    padded[vshift:vshift + n] = audio_feats
    dist = np.empty((n, width))
    for k in range(width):
        diff = video_feats - padded[k:k + n] + 1e-6
        dist[:, k] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    mdist = dist.mean(axis=0)
    best = int(np.argmin(mdist))
    med = float(np.median(mdist))
    fconf = med - dist[:, best]
    fconf = medfilt(fconf, kernel_size=9) if n >= 1 else fconf
    return LSEResult(lse_d=float(mdist[best]), lse_c=med - float(mdist[best]), offset=vshift - best,
                     distances=mdist, window_distances=dist, framewise_confidence=fconf)
