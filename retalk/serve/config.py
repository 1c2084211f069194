"""The server's settings, fixed when it starts (one frozen dataclass, passed to every part)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from retalk.errors import InputError


@dataclass(frozen=True)
class ServeConfig:
    """Settings of ``retalk serve``.

    ``host``/``port``: where to listen (loopback unless told otherwise).
    ``work_dir``: uploads, job outputs and generated examples live under it.
    ``max_upload_mb``: largest accepted upload, in MiB (per file).
    ``max_duration_s``: longest accepted audio or video upload, in seconds.
    ``max_text_chars``: longest text to speak.
    ``allowed_roots``: folders whose files jobs may name by server-side path; empty = server-side
    paths refused (the default).
    ``result_ttl_s``: a finished job (and its files) is deleted this many seconds after it ended.
    ``cpu_workers``: CPU jobs run at once (default: the machine's cores).
    ``gpu_workers``: jobs with a neural engine or enhancer run at once (one GPU job at a time).
    ``checkpoints``: default folder of released checkpoints (None: ``$RETALK_CHECKPOINTS`` or ./checkpoints).
    ``examples``: write example inputs under ``work_dir/examples`` on first start.
    """

    host: str = "127.0.0.1"
    port: int = 7860
    work_dir: Path = field(default_factory=lambda: Path(os.environ.get("RETALK_SERVE_DIR", "retalk-serve")))
    max_upload_mb: float = 200.0
    max_duration_s: float = 600.0
    max_text_chars: int = 5000
    allowed_roots: tuple[Path, ...] = ()
    result_ttl_s: float = 3600.0
    cpu_workers: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))
    gpu_workers: int = 1
    checkpoints: Path | None = None
    examples: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise InputError(f"--port must be 1..65535, got {self.port}")
        if self.max_upload_mb <= 0 or self.max_duration_s <= 0:
            raise InputError("upload limits must be positive")
        if self.result_ttl_s <= 0:
            raise InputError(f"--result-ttl must be positive, got {self.result_ttl_s}")
        if self.cpu_workers < 1 or self.gpu_workers < 1:
            raise InputError("worker counts must be at least 1")
        for root in self.allowed_roots:
            if not Path(root).is_dir():
                raise InputError(f"--allow-path {root}: not a folder")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def uploads(self) -> Path:
        return Path(self.work_dir) / "uploads"

    @property
    def jobs_dir(self) -> Path:
        return Path(self.work_dir) / "jobs"

    @property
    def examples_dir(self) -> Path:
        return Path(self.work_dir) / "examples"
