"""``retalk serve``: a web page and an HTTP job API on one server (needs ``pip install 'retalk[serve]'``).

Modules, one job each:

* :mod:`retalk.serve.config` — the server's settings (:class:`ServeConfig`).
* :mod:`retalk.serve.uploads` — upload checks: size, type by content, duration, confined server paths.
* :mod:`retalk.serve.tasks` — what a job is (:class:`JobSpec`) and how it runs in its worker process.
* :mod:`retalk.serve.jobs` — the bounded job queue (one GPU job at a time, CPU jobs up to the cores).
* :mod:`retalk.serve.api` — the FastAPI routes.
* :mod:`retalk.serve.ui` — the Gradio page.
* :mod:`retalk.serve.examples` — example inputs written on first start.
* :mod:`retalk.serve.app` — builds and runs the server.
* :mod:`retalk.serve.cli` — the ``serve`` subcommand.

Importing this package imports nothing heavy; Gradio is imported only when the app is built.
"""
from retalk.serve.config import ServeConfig

__all__ = ["ServeConfig"]
