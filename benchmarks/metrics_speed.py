"""CPU throughput of every metric in retalk.metrics, and scoring against rendering per clip.

Networks (SyncNet, FID Inception) run with random weights: the speed does not
depend on the values.  Run: ``python benchmarks/metrics_speed.py [--quick]``;
it finishes in well under two minutes on two cores.  ``--clip`` adds the cost
per frame of each metric group of ``retalk eval`` on a generated 5 s 512×512
clip rendered by the built-in engine, next to that render's time; ``--eval N``
runs ``retalk eval`` (paired, built-in) over N generated 3 s clips and compares
the mean ``render_s`` and ``score_s``.  Both give the wall time and the process
CPU time (every thread of the process), which moves less with the load of a
shared machine, and the load average.
"""
from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

log = logging.getLogger("metrics_speed")


def _rate(fn: Callable[[], object], units: float, repeat: int = 1, warmup: bool = True) -> tuple[float, float]:
    """Run ``fn`` once to warm up (unless ``warmup`` is False), then ``repeat`` times.

    Returns (units per second, seconds per call).  Calls of a second or more
    skip the warm-up: its cost is small beside theirs and the run stays short.
    """
    if warmup:
        fn()
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    per_call = (time.perf_counter() - t0) / repeat
    return units / per_call, per_call


def _report(name: str, rate: float, unit: str, per_call: float) -> None:
    per_frame = f"{1000.0 / rate:9.2f} ms/frame" if unit == "frames/s" else " " * 18
    log.info("%-44s %10.1f %-10s %s (%.3f s per call)", name, rate, unit, per_frame, per_call)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller inputs (a few seconds in all)")
    parser.add_argument("--clip", action="store_true", help="also: metric groups on a rendered 5 s 512x512 clip")
    parser.add_argument("--eval", type=int, default=0, metavar="N", help="also: retalk eval over N generated clips")
    parser.add_argument("--only-clips", action="store_true", help="skip the per-function throughput table")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    if not args.only_clips:
        _functions(args.quick)
    if args.clip:
        clip_costs(seconds=2.0 if args.quick else 5.0)
    if args.eval:
        eval_costs(args.eval, seconds=3.0)
    return 0


def _functions(quick: bool) -> None:
    """The throughput table of every function of retalk.metrics on generated arrays."""

    from retalk.metrics import (
        av_offset,
        cpbd,
        cpbd_face,
        fid,
        frechet_distance,
        kid,
        landmark_jitter,
        lmd_face,
        lmd_mouth,
        mfcc,
        mouth_opening,
        psnr,
        psnr_outside,
        ssim,
    )

    rng = np.random.default_rng(0)
    n_img = 4 if quick else 16
    faces = rng.integers(0, 256, (n_img, 256, 256, 3)).astype(np.uint8)
    from scipy.ndimage import gaussian_filter

    faces = np.stack([gaussian_filter(f, (1.0, 1.0, 0)) for f in faces])
    frame = np.zeros((720, 1280, 3), np.uint8)
    frame[200:456, 500:756] = faces[0]
    other = np.clip(faces.astype(np.int16) + rng.integers(-5, 6, faces.shape), 0, 255).astype(np.uint8)
    t0 = time.perf_counter()
    log.info("retalk.metrics throughput on CPU (%s)", "quick" if quick else "full")

    r, s = _rate(lambda: [cpbd(f) for f in faces], n_img)
    _report("CPBD, 256x256 RGB face", r, "frames/s", s)
    r, s = _rate(lambda: cpbd_face(frame, (500, 200, 756, 456)), 1, repeat=3)
    _report("CPBD of a face box in a 1280x720 frame", r, "frames/s", s)
    r, s = _rate(lambda: [psnr(a, b) for a, b in zip(faces, other)], n_img, repeat=5)
    _report("PSNR, 256x256 RGB", r, "frames/s", s)
    r, s = _rate(lambda: [ssim(a, b) for a, b in zip(faces, other)], n_img)
    _report("SSIM, 256x256 RGB", r, "frames/s", s)
    big_other = frame.copy()
    big_other[::7] = 3
    r, s = _rate(lambda: psnr_outside(frame, big_other, (500, 200, 756, 456)), 1, repeat=5)
    _report("PSNR outside face, 1280x720 RGB", r, "frames/s", s)

    n_lm = 250 if quick else 2500
    lm = rng.uniform(0, 500, (n_lm, 478, 3))
    lm_b = lm + rng.normal(0, 1, lm.shape)
    r, s = _rate(lambda: (lmd_mouth(lm, lm_b), lmd_face(lm, lm_b)), n_lm, repeat=3)
    _report("LMD mouth + face, 478 points", r, "frames/s", s)
    r, s = _rate(lambda: landmark_jitter(lm), n_lm, repeat=3)
    _report("landmark jitter, 478 points", r, "frames/s", s)
    r, s = _rate(lambda: mouth_opening(lm), n_lm, repeat=3)
    _report("mouth-opening series", r, "frames/s", s)

    seconds = 4 if quick else 20
    audio = (rng.standard_normal(16000 * seconds) * 0.1).astype(np.float32)
    opening = rng.random(25 * seconds)
    r, s = _rate(lambda: av_offset(opening, audio), 25 * seconds, repeat=3)
    _report(f"AV offset (weight-free), {seconds} s clip", r, "frames/s", s)
    r, s = _rate(lambda: mfcc(audio * 32768), seconds, repeat=3)
    _report(f"MFCC, {seconds} s of 16 kHz audio", r, "x realtime", s)

    n_feat = 1000 if quick else 3000
    feats_a = rng.normal(size=(n_feat, 2048))
    feats_b = rng.normal(size=(n_feat, 2048)) + 0.1
    r, s = _rate(lambda: fid(feats_a[:500], feats_b[:500]), 1)
    _report("FID, 2x500 features (sample route)", r, "sets/s", s)
    if not quick:
        r, s = _rate(lambda: fid(feats_a, feats_b), 1, warmup=False)
        _report(f"FID, 2x{n_feat} features (covariance route)", r, "sets/s", s)
        mu, cov = feats_a.mean(0), np.cov(feats_a, rowvar=False)
        r, s = _rate(lambda: frechet_distance(mu, cov, mu + 0.1, cov), 1, warmup=False)
        _report("Frechet distance of 2048-d Gaussians", r, "pairs/s", s)
    r, s = _rate(lambda: kid(feats_a, feats_b, n_subsets=10, subset_size=1000), 1, warmup=False)
    _report("KID, 10 subsets of 1000, 2048-d", r, "sets/s", s)

    import torch

    from retalk.metrics import FIDInceptionV3, inception_features, lse_scores

    log.info("torch %s, %d threads", torch.__version__, torch.get_num_threads())
    torch.manual_seed(0)
    net = FIDInceptionV3().eval()
    n_fid = 4 if quick else 16
    inception_features(faces[:1, :80, :80], net)  # first-call set-up of the CPU kernels
    r, s = _rate(lambda: inception_features(faces[:n_fid], net, batch=n_fid), n_fid, warmup=False)
    _report(f"Inception pool3 features (299x299), batch {n_fid}", r, "frames/s", s)

    if importlib.util.find_spec("retalk.networks.syncnet") is not None:
        from retalk.networks.syncnet import SyncNetV2

        sync = SyncNetV2().eval()
        n_frames = 30 if quick else 75
        crops = rng.integers(0, 256, (n_frames, 224, 224, 3)).astype(np.uint8)
        clip_audio = (rng.standard_normal(n_frames * 640) * 3000).astype(np.int16)
        r, s = _rate(lambda: lse_scores(crops, clip_audio, sync), n_frames - 5, warmup=False)
        _report(f"LSE-D/LSE-C with SyncNet, {n_frames} frames", r, "windows/s", s)
    else:
        log.info("LSE: retalk.networks.syncnet not available, skipped")
    log.info("total %.1f s", time.perf_counter() - t0)


def _make_clip(folder: Path, name: str, seconds: float, size: int, motion: float, rate: float) -> Path:
    """A generated talking-head-like clip: the moving astronaut with vowel speech as its sound."""
    from retalk.media import write_wav
    from retalk.samples import vowel_speech, write_face_clip

    wav = folder / f"{name}.wav"
    write_wav(wav, vowel_speech(seconds, syllable_rate=rate, seed=int(rate * 10)), 16000)
    clip = write_face_clip(folder / f"{name}.mp4", seconds, width=size, height=size, motion=motion, audio_path=wav)
    wav.unlink()
    return clip


def clip_costs(seconds: float = 5.0, size: int = 512) -> dict[str, tuple[float, float]]:
    """Render one generated clip with the built-in engine, then time ``score_clip`` per metric group.

    Each group is scored alone; its cost is that time minus the time of scoring no group (one
    decoding pass and the face mesh over the rendered video), which is reported as ``decode +
    face mesh``.  ``reference`` includes decoding and tracking the source.  ``lse`` uses SyncNet
    with random weights.  Returns (wall seconds, process CPU seconds) per clip by row name (also
    ``render``, ``all`` and ``all`` with ``--frame-step 5``); the CPU time counts every thread of
    this process (the encoder's and the scoring threads' too), so it moves less with the load of
    a shared machine than the wall time.
    """
    from retalk.evaluate.clip import ClipTask, score_clip
    from retalk.pipeline import SyncOptions, sync

    out: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        src = _make_clip(d, "src", seconds, size, 1.0, 4.0)
        rendered = d / "rendered.mp4"
        engine_log = logging.getLogger("retalk")
        level = engine_log.level
        engine_log.setLevel(logging.WARNING)  # the engine's per-pass report would split the table
        try:
            t0, c0 = time.perf_counter(), time.process_time()
            sync(str(src), str(src), rendered, SyncOptions(engine="builtin", progress=False))
            out["render"] = (time.perf_counter() - t0, time.process_time() - c0)
        finally:
            engine_log.setLevel(level)

        syncnet = None
        try:
            import torch

            from retalk.networks.syncnet import SyncNetV2

            torch.manual_seed(0)
            syncnet = SyncNetV2().eval()
        except ImportError:
            log.info("LSE: torch not available, skipped")

        def score(groups: tuple[str, ...], lse: bool = False, step: int = 1) -> tuple[float, float, int]:
            task = ClipTask("bench", str(src), str(src), "src", str(rendered), "builtin", "paired", groups, lse,
                            render=False, frame_step=step)
            t, c = time.perf_counter(), time.process_time()
            values, _ = score_clip(task, syncnet)
            return time.perf_counter() - t, time.process_time() - c, int(values["frames"])  # type: ignore[arg-type]

        base_wall, base_cpu, n = score(())
        out["decode + face mesh"] = (base_wall, base_cpu)
        for group in ("sharpness", "sync", "mouth", "jitter", "reference"):
            wall, cpu, _ = score((group,))
            out[group] = (max(0.0, wall - base_wall), max(0.0, cpu - base_cpu))
        if syncnet is not None:
            wall, cpu, _ = score(("lse",), lse=True)
            out["lse"] = (max(0.0, wall - base_wall), max(0.0, cpu - base_cpu))
        everything = ("sharpness", "sync", "mouth", "jitter", "reference")
        out["all"] = score(everything)[:2]
        out["all, --frame-step 5"] = score(everything, step=5)[:2]
        if syncnet is not None:
            out["all + lse"] = score(everything + ("lse",), lse=True)[:2]
    log.info("score_clip on a %.0f s %dx%d clip (%d frames), paired, frame step 1; load average %.1f",
             seconds, size, size, n, os.getloadavg()[0])
    log.info("  %-30s %14s %14s %12s", "", "wall ms/frame", "CPU ms/frame", "wall s/clip")
    for name, (wall, cpu) in out.items():
        log.info("  %-30s %14.2f %14.2f %12.2f", name, 1000.0 * wall / n, 1000.0 * cpu / n, wall)
    for k, kind in ((0, "wall"), (1, "CPU")):
        log.info("  scoring (all but lse) / rendering, %s time: %.2f (--frame-step 5: %.2f)", kind,
                 out["all"][k] / out["render"][k], out["all, --frame-step 5"][k] / out["render"][k])
    return out


class _CpuClock:
    """Wraps a function, adding up the process CPU seconds spent inside its calls (all threads of the process)."""

    def __init__(self, fn: Callable[..., object]) -> None:
        self.fn, self.seconds = fn, 0.0

    def __call__(self, *args: object, **kwargs: object) -> object:
        c = time.process_time()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds += time.process_time() - c


def eval_costs(n_clips: int, seconds: float = 3.0, size: int = 512) -> tuple[float, float]:
    """``retalk eval`` (paired, built-in, default metrics, no weights) over ``n_clips`` generated clips;
    mean (render_s, score_s) per clip from its ``results.csv``, and the process CPU seconds spent in
    rendering and in scoring (measured around ``sync`` and ``score_clip``)."""
    import retalk.evaluate.clip as clip_mod
    import retalk.pipeline as pipeline_mod
    from retalk.evaluate.runner import evaluate

    render_clock, score_clock = _CpuClock(pipeline_mod.sync), _CpuClock(clip_mod.score_clip)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "clips"
        d.mkdir()
        for k in range(n_clips):
            _make_clip(d, f"clip{k:02d}", seconds, size, 0.5 + 0.05 * k, 3.0 + 0.25 * k)
        empty = Path(tmp) / "no_weights"  # LSE and FID/KID are "unavailable", as in a run without downloads
        empty.mkdir()
        pipeline_mod.sync, clip_mod.score_clip = render_clock, score_clock  # type: ignore[assignment]
        try:
            summary = evaluate(d, "builtin", Path(tmp) / "run", protocol="paired", progress=False, checkpoints=empty)
        finally:
            pipeline_mod.sync, clip_mod.score_clip = render_clock.fn, score_clock.fn  # type: ignore[assignment]
        rows = [r for r in summary.rows if r["status"] == "ok"]
    render = float(np.mean([float(r["render_s"]) for r in rows]))
    score = float(np.mean([float(r["score_s"]) for r in rows]))
    log.info("retalk eval, %d generated %.0f s %dx%d clips (%d ok), load average %.1f: render %.2f s, score %.2f s "
             "per clip (score / render %.2f); CPU render %.2f s, score %.2f s per clip (score / render %.2f)",
             n_clips, seconds, size, size, len(rows), os.getloadavg()[0], render, score, score / render,
             render_clock.seconds / n_clips, score_clock.seconds / n_clips, score_clock.seconds / render_clock.seconds)
    return render, score


if __name__ == "__main__":
    raise SystemExit(main())
