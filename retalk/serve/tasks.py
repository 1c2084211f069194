"""What a job is (:class:`JobSpec`) and how one runs inside its worker process (:func:`child_main`).

A job runs in a process of its own so that cancelling it (terminating the process) and crashing in it
(a bug, a native library fault) leave the server untouched. Progress comes from the library's own
tqdm bars, which this module reads in the worker and sends to the server over a pipe.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retalk.serve.uploads import RequestError

log = logging.getLogger(__name__)

KINDS = ("dub", "portrait", "evaluate")
ENGINE_NAMES = ("builtin", "passthrough", "wav2lip")
"""The engines the page offers (``retalk.engines.ENGINES``' keys, kept here so the page need not import it)."""
CPU_ENGINES = ("builtin", "passthrough")
ENHANCERS = ("gfpgan",)
PREPROCESS = ("crop", "resize", "full")
RESULT_VIDEO = "result.mp4"
RESULT_REPORT = "report.zip"
REPORT_DIR = "report"

# share of the whole job each library progress bar covers: desc -> (start, end)
_STAGES: dict[str, tuple[float, float]] = {
    "analysing": (0.0, 0.35),
    "rendering": (0.35, 1.0),
    "animating": (0.1, 1.0),
}


@dataclass(frozen=True)
class JobSpec:
    """One job, validated and with its inputs stored on the server.

    ``kind``: dub | portrait | evaluate. ``inputs``: role → server path (``face``, ``audio``, ``image``,
    ``dataset``). ``text``: text to speak instead of an ``audio`` input. ``engine``/``enhancer``/
    ``checkpoints``: as on the command line. ``expression_scale``: mouth amplitude (1 = natural).
    ``voice``/``rate_wpm``: the synthesizer's voice and speed. ``portrait``: extra
    :class:`retalk.portrait.AnimateOptions` fields (size, preprocess, still, pose_style, blink_rate,
    input_yaw/pitch/roll). ``protocol``: evaluation protocol. ``recognize``: run the phone recognizer.
    """

    kind: str
    inputs: tuple[tuple[str, str], ...]
    text: str | None = None
    engine: str = "builtin"
    enhancer: str | None = None
    checkpoints: str | None = None
    expression_scale: float = 1.0
    voice: str = "en-us"
    rate_wpm: int = 160
    portrait: tuple[tuple[str, Any], ...] = field(default=())
    protocol: str = "paired"
    recognize: bool = True

    @property
    def lane(self) -> str:
        """``gpu`` for jobs with a neural network (one at a time), ``cpu`` otherwise."""
        neural = self.engine not in CPU_ENGINES and self.kind != "portrait"
        return "gpu" if neural or self.enhancer else "cpu"

    def path(self, role: str) -> str | None:
        return dict(self.inputs).get(role)


def validate(spec: JobSpec, max_text_chars: int) -> JobSpec:
    """Check a spec's options; :class:`RequestError` (400) names the first bad one."""
    from retalk.engines import ENGINES

    if spec.kind not in KINDS:
        raise RequestError(400, f"unknown job kind {spec.kind!r}; choose from {', '.join(KINDS)}")
    if spec.engine not in ENGINES:
        raise RequestError(400, f"unknown engine {spec.engine!r}; choose from {', '.join(sorted(ENGINES))}")
    if spec.enhancer not in (None, *ENHANCERS):
        raise RequestError(400, f"unknown enhancer {spec.enhancer!r}; choose from {', '.join(ENHANCERS)}")
    if not 0.0 <= spec.expression_scale <= 3.0:
        raise RequestError(400, f"expression_scale must be within 0..3, got {spec.expression_scale}")
    if not 80 <= spec.rate_wpm <= 450:
        raise RequestError(400, f"rate must be within 80..450 words per minute, got {spec.rate_wpm}")
    if spec.protocol not in ("paired", "unpaired"):
        raise RequestError(400, f"protocol must be paired or unpaired, got {spec.protocol!r}")
    need = {"dub": ("face",), "portrait": ("image",), "evaluate": ("dataset",)}[spec.kind]
    for role in need:
        if spec.path(role) is None:
            raise RequestError(400, f"a {spec.kind} job needs a {role} input")
    if spec.kind != "evaluate":
        if spec.text is not None and not spec.text.strip():
            raise RequestError(400, "text is empty")
        if spec.text is not None and len(spec.text) > max_text_chars:
            raise RequestError(413, f"text longer than the {max_text_chars} character limit")
        if (spec.text is None) == (spec.path("audio") is None):
            raise RequestError(400, f"a {spec.kind} job needs either an audio input or a text, not both")
    p = dict(spec.portrait)
    if p.get("preprocess", "crop") not in PREPROCESS:
        raise RequestError(400, f"preprocess must be one of {', '.join(PREPROCESS)}")
    if p.get("size") is not None and not 64 <= int(p["size"]) <= 1920:
        raise RequestError(400, "size must be within 64..1920 pixels")
    if not 0.0 <= float(p.get("blink_rate", 17.0)) <= 120.0:
        raise RequestError(400, "blink_rate must be within 0..120 per minute")
    return spec


# ------------------------------------------------------------------ in the worker process


def _watch_bars(send: Any, stop: threading.Event) -> None:
    """Send ("progress", fraction, stage) while the job runs, from the newest live tqdm bar."""
    from tqdm import tqdm

    last: tuple[float, str] | None = None
    while not stop.wait(0.25):
        bars = [b for b in list(getattr(tqdm, "_instances", ())) if getattr(b, "total", None)]
        if not bars:
            continue
        bar = max(bars, key=lambda b: getattr(b, "start_t", 0.0))  # the newest stage
        stage = str(bar.desc or "working")
        frac = min(1.0, bar.n / bar.total)
        lo, hi = _STAGES.get(stage, (0.0, 1.0))
        now = (round(lo + (hi - lo) * frac, 3), stage)
        if now != last:
            send(("progress", now[0], stage))
            last = now


def _speech(spec: JobSpec, work: Path) -> tuple[str, Any]:
    """The driving audio path and the phones to use (from the synthesizer when the job has text)."""
    if spec.text is None:
        return str(spec.path("audio")), None
    from retalk.media import write_wav
    from retalk.speech.tts import synthesize

    speech = synthesize(spec.text, voice=spec.voice, rate_wpm=spec.rate_wpm)
    wav = work / "speech.wav"
    write_wav(wav, speech.samples, speech.sample_rate)
    return str(wav), speech.phones


def run_job(spec: JobSpec, work: Path, out: Path) -> dict[str, Any]:
    """Run ``spec`` with scratch folder ``work``; write the result into ``out``; return what to report."""
    if spec.checkpoints:
        os.environ["RETALK_CHECKPOINTS"] = spec.checkpoints
    out.mkdir(parents=True, exist_ok=True)
    if spec.kind == "dub":
        from retalk.pipeline import SyncOptions, sync

        audio, phones = _speech(spec, work)
        res = sync(spec.path("face"), audio, out / RESULT_VIDEO, SyncOptions(
            engine=spec.engine, phones=phones, recognize=spec.recognize, expression_scale=spec.expression_scale,
            enhancer=spec.enhancer, progress=True))
        return {"file": RESULT_VIDEO, "frames": res.frames, "fps": res.fps, "duration": res.duration}
    if spec.kind == "portrait":
        from retalk.portrait import AnimateOptions, animate

        audio, phones = _speech(spec, work)
        extra = {k: (tuple(v) if isinstance(v, list) else v) for k, v in spec.portrait}
        res = animate(spec.path("image"), audio, out / RESULT_VIDEO, AnimateOptions(
            expression_scale=spec.expression_scale, enhancer=spec.enhancer, phones=phones,
            recognize=spec.recognize, progress=True, **extra))
        return {"file": RESULT_VIDEO, "frames": res.frames, "fps": res.fps, "duration": res.duration,
                "size": list(res.size)}
    import shutil

    from retalk.evaluate.runner import evaluate

    report = out / REPORT_DIR
    summary = evaluate(spec.path("dataset"), spec.engine, report, protocol=spec.protocol,
                       checkpoints=spec.checkpoints, progress=True)
    shutil.make_archive(str(out / Path(RESULT_REPORT).stem), "zip", report)
    means = {k: v for k, v in summary.means.items() if isinstance(v, (int, float))}
    return {"file": RESULT_REPORT, "clips": summary.n_clips, "scored": summary.n_ok, "errors": summary.errors,
            "means": means, "unavailable": summary.unavailable}


def child_main(spec: JobSpec, work: str, out: str, conn: Any) -> None:
    """Entry point of a worker process: run the job, send ("done", info) or ("error", one line)."""
    sys.stderr = open(os.devnull, "w")  # the library's progress bars are read, not printed
    os.environ.setdefault("GLOG_minloglevel", "3")
    lock = threading.Lock()

    def send(msg: tuple) -> None:
        with lock:
            conn.send(msg)

    stop = threading.Event()
    watcher = threading.Thread(target=_watch_bars, args=(send, stop), daemon=True)
    watcher.start()
    try:
        info = run_job(spec, Path(work), Path(out))
        stop.set()
        send(("done", info))
    except Exception as exc:  # noqa: BLE001 - every failure becomes the job's one-line error
        from retalk.errors import RetalkError

        stop.set()
        text = str(exc).splitlines()[0] if str(exc) else ""
        send(("error", text if isinstance(exc, RetalkError) else f"internal error: {type(exc).__name__}: {text}"))
    finally:
        conn.close()
