"""The HTTP job API (FastAPI): submit a job, poll it, fetch its result, cancel it.

Every refusal is a JSON body ``{"detail": "<one-line reason>"}`` with a fitting status: 400 bad option,
403 server-side path not allowed, 404 unknown job or path, 409 result not ready / job cancelled or
failed, 413 upload too large or too long, 415 not a usable media file.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse

from retalk.serve.config import ServeConfig
from retalk.serve.jobs import CANCELLED, DONE, FAILED, FINISHED, JobQueue
from retalk.serve.tasks import JobSpec, validate
from retalk.serve.uploads import RequestError, confine, link_server_file, store_upload

log = logging.getLogger(__name__)

MAX_CLIPS = 50
"""Most clips one evaluation upload may hold."""


def engine_report(checkpoints: Path | None) -> dict[str, dict[str, Any]]:
    """Engines and enhancers → ``{"ready": bool, "note": str}`` (a missing checkpoint says where to get it)."""
    from retalk.checkpoints import default_checkpoints_dir, resolve
    from retalk.engines import ENGINES
    from retalk.errors import RetalkError

    folder = default_checkpoints_dir(checkpoints)
    needs = {"wav2lip": "wav2lip", "gfpgan": "gfpgan"}
    out: dict[str, dict[str, Any]] = {}
    for name in [*sorted(ENGINES), "gfpgan"]:
        if name == "videoretalking":  # several files: say which are missing
            from retalk.engines.videoretalking.release import RELEASE_URL, find_release

            files, missing = find_release(folder)
            note = ("release files found" if files is not None else
                    f"missing in {folder.resolve()}: {', '.join(n for n, _ in missing)}; get them from {RELEASE_URL}")
            out[name] = {"ready": files is not None, "note": note}
            continue
        if name not in needs:
            out[name] = {"ready": True, "note": "runs on the CPU, no weights"}
            continue
        try:
            file = resolve(needs[name], checkpoints_dir=folder)
            out[name] = {"ready": True, "note": f"checkpoint {file.name} found"}
        except RetalkError as exc:
            out[name] = {"ready": False, "note": str(exc)}
    return out


class Submitter:
    """Turns request fields into stored inputs and a validated :class:`JobSpec`, and queues it.

    Shared by the API routes and the web page, so both get the same checks and the same queue.
    """

    def __init__(self, config: ServeConfig, queue: JobQueue) -> None:
        self.config = config
        self.queue = queue

    def _input(self, folder: Path, role: str, upload: Any, server_path: str | None) -> str | None:
        cfg = self.config
        if upload is not None and server_path:
            raise RequestError(400, f"{role}: give an upload or a server-side path, not both")
        if upload is not None:
            return str(store_upload(upload, folder / "in", role, cfg.max_upload_bytes, cfg.max_duration_s))
        if server_path:
            return str(link_server_file(server_path, cfg.allowed_roots, folder / "in", role, cfg.max_upload_bytes,
                                        cfg.max_duration_s))
        return None

    def checkpoints(self, text: str | None) -> str | None:
        """The checkpoint folder a job may use: the server's, or one inside the allowed roots."""
        if not text:
            return str(self.config.checkpoints) if self.config.checkpoints else None
        if self.config.checkpoints and Path(text).expanduser().resolve() == Path(self.config.checkpoints).resolve():
            return str(self.config.checkpoints)
        return str(confine(text, self.config.allowed_roots))

    def submit(self, kind: str, files: dict[str, Any], paths: dict[str, str | None], **options: Any) -> str:
        """Store the inputs (``files``: role → readable stream; ``paths``: role → server-side path),
        validate and queue the job; return its id. A refused job leaves nothing behind."""
        import shutil

        job_id, folder = self.queue.new_folder()
        try:
            inputs: dict[str, str] = {}
            for role in sorted(set(files) | set(paths)):
                got = self._input(folder, role, files.get(role), paths.get(role))
                if got is not None:
                    inputs[role] = got
            self._enqueue(job_id, folder, kind, tuple(sorted(inputs.items())), options)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return job_id

    def _enqueue(self, job_id: str, folder: Path, kind: str, inputs: tuple[tuple[str, str], ...],
                 options: dict[str, Any]) -> None:
        """Check the job (the checkpoint folder resolved) and put it in the queue."""
        options["checkpoints"] = self.checkpoints(options.get("checkpoints"))
        spec = validate(JobSpec(kind=kind, inputs=inputs, **options), self.config.max_text_chars)
        self.queue.submit(job_id, folder, spec)

    def submit_clips(self, clips: list[Any], dataset_path: str | None, **options: Any) -> str:
        """Queue an evaluation of uploaded clips (each a video with its own sound) or a server-side folder."""
        import shutil

        if bool(clips) == bool(dataset_path):
            raise RequestError(400, "evaluate: give clips to upload or a dataset_path, not both or neither")
        if len(clips) > MAX_CLIPS:
            raise RequestError(413, f"evaluate: more than {MAX_CLIPS} clips")
        job_id, folder = self.queue.new_folder()
        try:
            if dataset_path:
                dataset = confine(dataset_path, self.config.allowed_roots)
            else:
                dataset = folder / "in" / "clips"
                for i, clip in enumerate(clips):
                    stored = store_upload(clip, dataset, "clip", self.config.max_upload_bytes,
                                          self.config.max_duration_s)
                    stored.rename(dataset / f"clip{i:03d}{stored.suffix}")
            self._enqueue(job_id, folder, "evaluate", (("dataset", str(dataset)),), options)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return job_id


def _stream(upload: UploadFile | None) -> Any:
    return upload.file if upload is not None and upload.filename is not None else None


def _status_or_404(queue: JobQueue, job_id: str) -> Any:
    status = queue.get(job_id)
    if status is None:
        raise RequestError(404, f"no job {job_id!r} (unknown, or expired)")
    return status


def build_router(submitter: Submitter) -> APIRouter:
    """The ``/api`` routes over ``submitter``'s queue."""
    r = APIRouter(prefix="/api", tags=["jobs"])
    queue = submitter.queue
    cfg = submitter.config

    @r.get("/health", summary="Liveness and queue load")
    def health() -> dict[str, Any]:
        states = [s.state for s in queue.list()]
        return {"ok": True, "queued": states.count("queued"), "running": states.count("running"),
                "limits": {"max_upload_mb": cfg.max_upload_mb, "max_duration_s": cfg.max_duration_s,
                           "server_paths": bool(cfg.allowed_roots), "result_ttl_s": cfg.result_ttl_s}}

    @r.get("/engines", summary="Engines and enhancers, and whether their checkpoints are found")
    def engines() -> dict[str, Any]:
        return engine_report(cfg.checkpoints)

    @r.post("/jobs/dub", status_code=202, summary="Dub a video (or still) with new speech: audio or text")
    def dub(face: UploadFile | None = File(None), audio: UploadFile | None = File(None),
            face_path: str | None = Form(None), audio_path: str | None = Form(None), text: str | None = Form(None),
            engine: str = Form("builtin"), enhancer: str | None = Form(None), checkpoints: str | None = Form(None),
            expression_scale: float = Form(1.0), voice: str = Form("en-us"), rate: int = Form(160),
            recognize: bool = Form(True)) -> dict[str, Any]:
        job_id = submitter.submit("dub", {"face": _stream(face), "audio": _stream(audio)},
                                  {"face": face_path, "audio": audio_path}, text=text or None, engine=engine,
                                  enhancer=enhancer or None, checkpoints=checkpoints,
                                  expression_scale=expression_scale, voice=voice, rate_wpm=rate,
                                  recognize=recognize)
        return queue.get(job_id).as_dict()  # type: ignore[union-attr]

    @r.post("/jobs/portrait", status_code=202, summary="Animate a photo with speech: audio or text")
    def portrait(image: UploadFile | None = File(None), audio: UploadFile | None = File(None),
                 image_path: str | None = Form(None), audio_path: str | None = Form(None),
                 text: str | None = Form(None), enhancer: str | None = Form(None),
                 checkpoints: str | None = Form(None), expression_scale: float = Form(1.0),
                 voice: str = Form("en-us"), rate: int = Form(160), size: int | None = Form(None),
                 preprocess: str = Form("crop"), still: bool = Form(False), pose_style: int = Form(0),
                 blink_rate: float = Form(17.0), fps: float = Form(25.0),
                 recognize: bool = Form(True)) -> dict[str, Any]:
        portrait_opts = (("size", size), ("preprocess", preprocess), ("still", still), ("pose_style", pose_style),
                         ("blink_rate", blink_rate), ("fps", fps))
        job_id = submitter.submit("portrait", {"image": _stream(image), "audio": _stream(audio)},
                                  {"image": image_path, "audio": audio_path}, text=text or None,
                                  enhancer=enhancer or None, checkpoints=checkpoints,
                                  expression_scale=expression_scale, voice=voice, rate_wpm=rate,
                                  portrait=portrait_opts, recognize=recognize)
        return queue.get(job_id).as_dict()  # type: ignore[union-attr]

    @r.post("/jobs/evaluate", status_code=202, summary="Evaluate an engine on uploaded clips or a server folder")
    def evaluate(clips: list[UploadFile] = File(default_factory=list), dataset_path: str | None = Form(None),
                 engine: str = Form("builtin"), protocol: str = Form("paired"),
                 checkpoints: str | None = Form(None)) -> dict[str, Any]:
        streams = [c.file for c in clips if c.filename is not None]
        job_id = submitter.submit_clips(streams, dataset_path, engine=engine, protocol=protocol,
                                        checkpoints=checkpoints)
        return queue.get(job_id).as_dict()  # type: ignore[union-attr]

    @r.get("/jobs", summary="All jobs not yet expired")
    def jobs() -> list[dict[str, Any]]:
        return [s.as_dict() for s in queue.list()]

    @r.get("/jobs/{job_id}", summary="A job's state and progress (0..1)")
    def job(job_id: str) -> dict[str, Any]:
        return _status_or_404(queue, job_id).as_dict()

    @r.get("/jobs/{job_id}/result", summary="The result file: an MP4 video, or report.zip for an evaluation",
           response_class=FileResponse)
    def result(job_id: str) -> FileResponse:
        status = _status_or_404(queue, job_id)
        if status.state == CANCELLED:
            raise RequestError(409, "the job was cancelled; it has no result")
        if status.state == FAILED:
            raise RequestError(409, f"the job failed: {status.error}")
        path = queue.result_path(job_id)
        if status.state != DONE or path is None or not path.is_file():
            raise RequestError(409, f"the job is {status.state}; poll it until its state is done")
        media = "application/zip" if path.suffix == ".zip" else "video/mp4"
        return FileResponse(path, media_type=media, filename=f"retalk-{job_id}{path.suffix}")

    @r.delete("/jobs/{job_id}", summary="Cancel a queued or running job (its output is deleted)")
    def cancel(job_id: str) -> dict[str, Any]:
        status = _status_or_404(queue, job_id)
        if status.state in FINISHED:
            raise RequestError(409, f"the job is already {status.state}")
        return queue.cancel(job_id).as_dict()  # type: ignore[union-attr]

    return r


def install_handlers(app: FastAPI, config: ServeConfig) -> None:
    """One-line JSON errors, and a request-size guard that refuses an oversized body before reading it."""
    limit = config.max_upload_bytes * 4 + (1 << 20)

    @app.exception_handler(RequestError)
    async def _refused(request: Request, exc: RequestError) -> JSONResponse:
        log.info("%s %s refused (%d): %s", request.method, request.url.path, exc.status, exc)
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}"}, status_code=500)

    @app.middleware("http")
    async def _size_guard(request: Request, call_next: Any) -> Any:
        length = request.headers.get("content-length")
        if request.url.path.startswith("/api/") and length and length.isdigit() and int(length) > limit:
            return JSONResponse({"detail": f"request body larger than the {limit / 2**20:.0f} MiB limit"},
                                status_code=413)
        return await call_next(request)
