"""The ``retalk serve`` subcommand: :func:`add_serve_parser` adds it, :func:`run_serve` runs it.

Wiring (in ``retalk/cli.py``)::

    _add_serve_parser(sub, [common])      # in build_parser(); calls add_serve_parser
    if args.command == "serve":           # in main()
        return run_serve(args)
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path


def add_serve_parser(subparsers: argparse._SubParsersAction,
                     parents: Sequence[argparse.ArgumentParser] = ()) -> argparse.ArgumentParser:
    """Add ``serve`` to ``subparsers``."""
    p = subparsers.add_parser(
        "serve", parents=list(parents), help="web page and HTTP job API on one local server",
        description="Serve a web page (dubbing, portrait, evaluation) and an HTTP job API on one server. "
                    "Listens on 127.0.0.1 unless --host says otherwise. Needs pip install 'retalk[serve]'.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--work-dir", default="retalk-serve", metavar="DIR",
                   help="uploads, results and example inputs (default ./retalk-serve)")
    p.add_argument("--max-upload-mb", type=float, default=200.0, metavar="MB", help="largest upload (default 200)")
    p.add_argument("--max-duration", type=float, default=600.0, metavar="S",
                   help="longest audio or video upload in seconds (default 600)")
    p.add_argument("--allow-path", action="append", default=[], metavar="DIR",
                   help="let jobs name files under DIR on the server (repeatable; default: server-side paths off)")
    p.add_argument("--result-ttl", type=float, default=3600.0, metavar="S",
                   help="delete a finished job and its files this many seconds after it ended (default 3600)")
    p.add_argument("--cpu-workers", type=int, metavar="N", help="CPU jobs at once (default: the number of cores)")
    p.add_argument("--checkpoints", metavar="DIR",
                   help="folder with released checkpoints (default ./checkpoints or $RETALK_CHECKPOINTS)")
    p.add_argument("--no-examples", dest="examples", action="store_false",
                   help="do not write example inputs on start")
    return p


def run_serve(args: argparse.Namespace) -> int:
    """Run ``retalk serve`` until interrupted; :class:`RetalkError` for a bad option or a missing extra."""
    import importlib.util

    from retalk.errors import MissingDependencyError
    from retalk.serve.config import ServeConfig

    for module in ("gradio", "fastapi", "uvicorn", "multipart"):
        if importlib.util.find_spec(module) is None:
            raise MissingDependencyError(f"retalk serve needs {module}: pip install 'retalk[serve]'")
    extra = {"cpu_workers": args.cpu_workers} if args.cpu_workers else {}
    config = ServeConfig(host=args.host, port=args.port, work_dir=Path(args.work_dir),
                         max_upload_mb=args.max_upload_mb, max_duration_s=args.max_duration,
                         allowed_roots=tuple(Path(d).expanduser().absolute() for d in args.allow_path),
                         result_ttl_s=args.result_ttl, checkpoints=Path(args.checkpoints) if args.checkpoints else None,
                         examples=args.examples, **extra)
    from retalk.serve.app import serve

    serve(config)
    return 0
