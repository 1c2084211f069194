"""The neural runtime: overlapping stages keep order, stop cleanly, and equal the sequential path."""
from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

from retalk.engines.base import Engine
from retalk.errors import InputError
from retalk.runtime import Slot, StageClock, check_device_name, run_ops, run_ops_sequential


class _Op:
    """A toy op: prepare adds the frame's index, the 'network' doubles, finish writes the value into the frame.

    Random sleeps make the pool's threads finish out of order.
    """

    name = "toy"

    def __init__(self, batch_size: int = 3, fail_at: int | None = None, sleep: float = 0.002) -> None:
        self.batch_size = batch_size
        self.fail_at = fail_at
        self.sleep = sleep
        self.rng = np.random.default_rng(0)
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.batches: list[list[int]] = []

    def _nap(self) -> None:
        with self.lock:
            t = float(self.rng.uniform(0, self.sleep))
        time.sleep(t)

    def prepare_item(self, slot: Slot) -> int | None:
        self._nap()
        if slot.out_index == self.fail_at:
            raise RuntimeError("boom")
        if slot.out_index % 7 == 3:
            return None
        with self.lock:  # prepared and not yet finished
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return int(slot.frame[0, 0, 0]) + slot.out_index

    def run_batch(self, inputs: list[int]) -> list[int]:
        self.batches.append(list(inputs))
        return [2 * v for v in inputs]

    def finish_item(self, slot: Slot, prepared: int, output: int) -> np.ndarray:
        self._nap()
        with self.lock:
            self.in_flight -= 1
        out = slot.frame.copy()
        out[0, 0, 1] = output % 256
        return out


def _slots(n: int) -> list[Slot]:
    out = []
    for i in range(n):
        frame = np.full((4, 4, 3), i % 50, np.uint8)
        # every 5th frame has no face (passes through), every 11th repeats the previous output (None)
        out.append(Slot(i, i, None if i % 11 == 10 else frame, work=i % 5 != 4))
    return out


def _expected(slot: Slot) -> np.ndarray | None:
    """What the toy op must make of a slot, written out independently of the runtime."""
    if slot.frame is None:
        return None
    out = slot.frame.copy()
    if slot.work and slot.out_index % 7 != 3:
        out[0, 0, 1] = (2 * (int(slot.frame[0, 0, 0]) + slot.out_index)) % 256
    return out


def test_order_kept_and_equal_to_sequential() -> None:
    slots = _slots(200)
    concurrent = list(run_ops(iter(slots), [_Op(), _Op(batch_size=5)], workers=4))
    sequential = list(run_ops_sequential(iter(slots), [_Op(), _Op(batch_size=5)]))
    assert [s.out_index for s in concurrent] == list(range(200))
    for a, b, src in zip(concurrent, sequential, slots):
        want = _expected(src)
        if want is not None:  # both ops read [0, 0, 0] and write the same value into [0, 0, 1]
            assert a.frame is not None and b.frame is not None
            np.testing.assert_array_equal(a.frame, b.frame)
            np.testing.assert_array_equal(a.frame, want)
        else:
            assert a.frame is None and b.frame is None


def test_batches_are_full_and_in_order() -> None:
    op = _Op(batch_size=4)
    list(run_ops(iter(_slots(60)), [op], workers=3))
    seen = [v for b in op.batches for v in b]
    want = [int(s.frame[0, 0, 0]) + s.out_index for s in _slots(60)
            if s.frame is not None and s.work and s.out_index % 7 != 3]
    assert seen == want
    assert all(len(b) == 4 for b in op.batches[:-1])


def test_in_flight_is_bounded() -> None:
    op = _Op(batch_size=4, sleep=0.0005)
    list(run_ops(iter(_slots(400)), [op], workers=2, window=6))
    # prepare window + two device batches + the batch being gathered + finish window
    assert op.max_in_flight <= 6 + 2 * 4 + 4 + 6


def test_stage_error_stops_everything() -> None:
    op = _Op(fail_at=57)
    consumed = []
    started = threading.active_count()
    with pytest.raises(RuntimeError, match="boom"):
        for s in run_ops(iter(_slots(1000)), [op], workers=3):
            consumed.append(s.out_index)
    assert consumed == list(range(len(consumed))) and len(consumed) < 57
    time.sleep(0.05)
    assert threading.active_count() <= started  # the pools are shut down


def test_timings_recorded() -> None:
    clock = StageClock()
    list(run_ops(iter(_slots(50)), [_Op()], workers=2, clock=clock))
    t = clock.timings()
    assert {"toy.prepare", "toy.network", "toy.finish"} <= set(t.stages)
    n_work = sum(1 for s in _slots(50) if s.frame is not None and s.work)
    assert t.stages["toy.prepare"].items == n_work
    assert t.critical_path() in t.stages
    assert "critical path" in t.report()


def test_device_names() -> None:
    assert check_device_name(None) is None and check_device_name("auto") is None
    assert check_device_name("cuda:1") == "cuda:1" and check_device_name("cpu") == "cpu"
    for bad in ("gpu", "cuda:", "cuda:x", "CPU", "cuda1"):
        with pytest.raises(InputError, match="--device"):
            check_device_name(bad)


# ------------------------------------------------------------------ the pipeline with a neural engine
@pytest.fixture(scope="module")
def w2l_folder(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from retalk.networks.wav2lip import Wav2Lip

    folder = tmp_path_factory.mktemp("w2l_rt")
    torch.manual_seed(1)
    torch.save({"state_dict": {"module." + k: v for k, v in Wav2Lip().state_dict().items()}},
               folder / "wav2lip_gan.pth")
    return folder


def test_resolve_device_without_cuda() -> None:
    torch = pytest.importorskip("torch")
    from retalk.runtime import resolve_device

    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA"):
            resolve_device("cuda")


def _decoded(path) -> np.ndarray:
    from retalk.media import iter_frames, probe_video

    return np.stack(list(iter_frames(probe_video(path))))


def test_sync_concurrent_equals_sequential(tmp_path, monkeypatch, w2l_folder, face_clip, short_wav) -> None:
    from retalk.pipeline import SyncOptions, sync

    monkeypatch.setenv("RETALK_CHECKPOINTS", str(w2l_folder))
    opts = SyncOptions(engine="wav2lip", progress=False, recognize=False, preset="ultrafast",
                       engine_options={"batch_size": 4})
    a = sync(face_clip, short_wav, tmp_path / "a.mp4", opts)
    b = sync(face_clip, short_wav, tmp_path / "b.mp4", SyncOptions(**{**opts.__dict__, "concurrent": False}))
    np.testing.assert_array_equal(_decoded(a.path), _decoded(b.path))
    stages = set(a.timings.stages)
    assert {"wav2lip.prepare", "wav2lip.network", "wav2lip.finish", "encode", "analysis.track"} <= stages
    assert a.timings.stages["wav2lip.network"].items == a.frames  # every frame has a face here


class _Exploding(Engine):
    """An injected engine wrapping the real one; its network raises ``exc`` on the third batch."""

    name, batch_size, needs_phones = "boom", 2, False

    def __init__(self, inner, exc: BaseException) -> None:
        self.inner, self.exc, self.calls, self.closed = inner, exc, 0, False

    def prepare(self, plan) -> None:
        self.inner.prepare(plan)

    def prepare_item(self, slot):
        return self.inner.prepare_item(slot)

    def run_batch(self, inputs):
        self.calls += 1
        if self.calls == 3:
            raise self.exc
        return self.inner.run_batch(inputs)

    def finish_item(self, slot, prepared, output):
        return self.inner.finish_item(slot, prepared, output)

    def render(self, items):  # pragma: no cover - the runtime uses the three steps
        raise AssertionError("the runtime must not call render() on a BatchOp")

    def close(self) -> None:
        self.closed = True
        self.inner.close()


def test_failing_stage_leaves_no_output(tmp_path, w2l_folder, face_clip, short_wav) -> None:
    from retalk.engines.wav2lip import Wav2LipEngine
    from retalk.pipeline import SyncOptions, sync

    engine = _Exploding(Wav2LipEngine(checkpoint=w2l_folder / "wav2lip_gan.pth", device="cpu"),
                        RuntimeError("network fell over"))
    with pytest.raises(RuntimeError, match="fell over"):
        sync(face_clip, short_wav, tmp_path / "out.mp4", SyncOptions(engine=engine, progress=False, recognize=False))
    assert list(tmp_path.iterdir()) == []
    assert not engine.closed  # an injected engine belongs to the caller


def test_interrupt_leaves_no_output(tmp_path, w2l_folder, face_clip, vowel_wav) -> None:
    """A real SIGINT (Ctrl-C) arriving while the rendering stages run."""
    from retalk.engines.wav2lip import Wav2LipEngine
    from retalk.pipeline import SyncOptions, sync

    class _Slow(_Exploding):
        def run_batch(self, inputs):
            self.calls += 1
            if self.calls == 2:
                threading.Timer(0.01, os.kill, (os.getpid(), signal.SIGINT)).start()
            time.sleep(0.05)
            return self.inner.run_batch(inputs)

    engine = _Slow(Wav2LipEngine(checkpoint=w2l_folder / "wav2lip_gan.pth", device="cpu"), RuntimeError())
    with pytest.raises(KeyboardInterrupt):
        sync(face_clip, vowel_wav, tmp_path / "out.mp4", SyncOptions(engine=engine, progress=False, recognize=False))
    assert list(tmp_path.iterdir()) == []


def test_bf16_autocast_within_tolerance(w2l_folder) -> None:
    """The autocast path (bf16 on the CPU, the code path fp16 takes on CUDA) stays near float32.

    Stated tolerance: mean absolute difference under 2 grey levels, 99th percentile under 12,
    on the generator's 96 × 96 output (random weights, random crops).
    """
    from retalk.engines.wav2lip import Wav2LipEngine

    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (4, 96, 96, 3), dtype=np.uint8)
    mels = rng.normal(size=(4, 80, 16)).astype(np.float32)
    fp32 = Wav2LipEngine(checkpoint=w2l_folder / "wav2lip_gan.pth", device="cpu")
    bf16 = Wav2LipEngine(checkpoint=w2l_folder / "wav2lip_gan.pth", device="cpu", precision="bf16")
    a = fp32._infer(faces, mels).astype(np.float64)
    b = bf16._infer(faces, mels).astype(np.float64)
    d = np.abs(a - b)
    assert d.mean() < 2.0 and np.percentile(d, 99) < 12
    assert d.max() > 0  # autocast really ran in bf16
    with pytest.raises(InputError, match="precision"):
        Wav2LipEngine(checkpoint=w2l_folder / "wav2lip_gan.pth", device="cpu", precision="fp8")
