"""Build the server: the FastAPI app with the job API, with the Gradio page mounted on it; run it."""
from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from retalk.serve.config import ServeConfig

log = logging.getLogger(__name__)

DESCRIPTION = """HTTP job API of retalk: submit a dubbing, portrait or evaluation job (multipart upload, or a
server-side path when the operator allowed it), poll it, fetch its result, cancel it. Refusals are
JSON `{"detail": "<one line>"}` with status 400, 403, 404, 409, 413 or 415. See docs/serve.md."""


def _offline_theme() -> Any:
    """The default look with system fonts only (the stock theme fetches fonts from the internet)."""
    import gradio as gr

    sans = ["ui-sans-serif", "system-ui", "sans-serif"]
    mono = ["ui-monospace", "Consolas", "monospace"]
    return gr.themes.Default(font=sans, font_mono=mono)


def build_app(config: ServeConfig) -> Any:
    """The ASGI app: ``/api/...`` (jobs), ``/api/openapi.json`` (schema) and the page at ``/``.

    The job queue is closed when the app shuts down.
    """
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no usage reports: the page works offline
    import gradio as gr
    from fastapi import FastAPI

    from retalk import __version__
    from retalk.serve.api import Submitter, build_router, install_handlers
    from retalk.serve.examples import ExampleMaker
    from retalk.serve.jobs import JobQueue
    from retalk.serve.ui import build_ui

    config.jobs_dir.mkdir(parents=True, exist_ok=True)
    queue = JobQueue(config.jobs_dir, config.cpu_workers, config.gpu_workers, config.result_ttl_s)
    submitter = Submitter(config, queue)
    examples = ExampleMaker(config.examples_dir) if config.examples else None

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        if examples is not None:
            examples.start()  # after the imports above, so start-up is not slowed down
        yield
        queue.close()

    api = FastAPI(title="retalk", version=__version__, description=DESCRIPTION, docs_url=None, redoc_url=None,
                  openapi_url="/api/openapi.json", lifespan=lifespan)
    install_handlers(api, config)
    api.include_router(build_router(submitter))
    api.state.queue = queue
    page = build_ui(submitter, examples)
    return gr.mount_gradio_app(api, page, path="/", allowed_paths=[str(config.work_dir.absolute())],
                               max_file_size=config.max_upload_bytes, theme=_offline_theme(), ssr_mode=False,
                               footer_links=["api"], server_name=config.host, server_port=config.port)


@dataclass
class Running:
    """A server started by :func:`start` in a background thread (tests, embedding)."""

    server: Any
    thread: threading.Thread
    url: str

    def stop(self, timeout: float = 15.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


def start(config: ServeConfig, ready_timeout: float = 60.0) -> Running:
    """Start the server in a thread; return once it accepts connections."""
    import time

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(build_app(config), host=config.host, port=config.port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="retalk-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + ready_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    return Running(server, thread, f"http://{config.host}:{config.port}")


def serve(config: ServeConfig) -> None:
    """Run the server in the foreground until interrupted."""
    import uvicorn

    # Gradio's copies of uploads and results live with the jobs (read when Gradio is imported, below)
    os.environ.setdefault("GRADIO_TEMP_DIR", str((config.work_dir / "gradio").absolute()))
    app = build_app(config)
    if config.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("listening on %s: other machines can reach this server, and it has no authentication",
                    config.host)
    where = f"http://{config.host}:{config.port}"
    log.warning("retalk serve: %s  (page /, API /api, schema /api/openapi.json)", where)
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning")
