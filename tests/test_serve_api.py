"""The HTTP job API of ``retalk serve``: jobs in parallel, refusals with the right status, cancellation.

One server on 127.0.0.1 and a free port for the module; every refusal is followed by a check that
the server still serves.
"""
from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gradio", reason="needs pip install 'retalk[serve]'")
httpx = pytest.importorskip("httpx")

FPS = 25
LIMIT_MB = 0.5          # upload limit of the test server
LIMIT_S = 8.0           # duration limit of the test server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """A 1 s face clip, speech of several lengths (vowel-like), a too-long wav, a text file, an outside file."""
    from retalk.media import write_wav
    from retalk.samples import vowel_speech, write_face_clip

    d = tmp_path_factory.mktemp("serve-media")
    out = {"face": write_face_clip(d / "face.mp4", seconds=1.0, fps=FPS, width=192, height=192)}
    for secs in (0.6, 0.8, 1.0, 1.2, 1.4, 5.0, 9.0):
        p = d / f"speech_{secs}.wav"
        write_wav(p, vowel_speech(secs), 16000)
        out[secs] = p
    (d / "notes.txt").write_text("this is not a video\n" * 10)
    out["text"] = d / "notes.txt"
    fake = d / "fake.mp4"  # an mp4 name with text inside
    fake.write_bytes(b"\x00\x00\x00\x18ftypisom" + b"garbage" * 200)
    out["fake"] = fake
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory, media):
    from retalk.serve.app import start
    from retalk.serve.config import ServeConfig

    work = tmp_path_factory.mktemp("serve-work")
    allowed = tmp_path_factory.mktemp("allowed")
    (allowed / "face.mp4").write_bytes(Path(media["face"]).read_bytes())
    os.symlink(media[1.0], allowed / "link_out.wav")  # a link inside the root pointing outside it
    cfg = ServeConfig(host="127.0.0.1", port=free_port(), work_dir=work, max_upload_mb=LIMIT_MB,
                      max_duration_s=LIMIT_S, allowed_roots=(allowed,), cpu_workers=2, examples=False,
                      checkpoints=tmp_path_factory.mktemp("no-checkpoints"))
    running = start(cfg)
    client = httpx.Client(base_url=running.url, timeout=30)
    yield {"url": running.url, "client": client, "allowed": allowed, "work": work}
    client.close()
    running.stop()
    assert not running.thread.is_alive()


def _files(**paths):
    return {k: (Path(v).name, open(v, "rb")) for k, v in paths.items()}


def submit_dub(client, face, audio, **form):
    r = client.post("/api/jobs/dub", files=_files(face=face, audio=audio), data={"recognize": "false", **form})
    assert r.status_code == 202, r.text
    return r.json()["id"]


def wait(client, job_id, timeout=90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = client.get(f"/api/jobs/{job_id}").json()
        if st["state"] in ("done", "failed", "cancelled"):
            return st
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def still_serving(client):
    assert client.get("/api/health").json()["ok"] is True


def assert_refused(r, status, words):
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert "\n" not in detail and words in detail, detail


def test_five_concurrent_jobs(server, media, tmp_path):
    import av

    c = server["client"]
    lengths = (0.6, 0.8, 1.0, 1.2, 1.4)
    ids: dict[float, str] = {}

    def go(secs):
        with httpx.Client(base_url=server["url"], timeout=30) as own:
            ids[secs] = submit_dub(own, media["face"], media[secs])

    threads = [threading.Thread(target=go, args=(s,)) for s in lengths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    states = {s: wait(c, ids[s]) for s in lengths}
    for secs, st in states.items():
        assert st["state"] == "done", st
        assert st["progress"] == 1.0
        r = c.get(f"/api/jobs/{ids[secs]}/result")
        assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
        out = tmp_path / f"{secs}.mp4"
        out.write_bytes(r.content)
        with av.open(str(out)) as box:  # the output has the speech's length: secs * 25 frames, with sound
            frames = sum(1 for _ in box.decode(video=0))
            assert box.streams.audio
        assert frames == round(secs * FPS), (secs, frames)
        assert st["result"]["frames"] == frames
    # never more than cpu_workers (2) jobs ran at once
    spans = [(st["started"], st["finished"]) for st in states.values()]
    peak = max(sum(1 for a, b in spans if a <= t0 < b) for t0, _ in spans)
    assert peak <= 2


def test_oversized_upload(server, media, tmp_path):
    c = server["client"]
    big = tmp_path / "big.mp4"
    big.write_bytes(Path(media["face"]).read_bytes() + os.urandom(int(LIMIT_MB * 2**20)))
    r = c.post("/api/jobs/dub", files=_files(face=big, audio=media[1.0]))
    assert_refused(r, 413, "MiB limit")
    r = c.post("/api/jobs/dub", files=_files(face=media["face"], audio=media[9.0]))  # 9 s > 8 s limit
    assert_refused(r, 413, "longer than the 8 s limit")
    still_serving(c)


def test_non_media_upload(server, media):
    c = server["client"]
    before = sorted((server["work"] / "jobs").iterdir())
    r = c.post("/api/jobs/dub", files=_files(face=media["text"], audio=media[1.0]))
    assert_refused(r, 415, "not a recognised media file")
    r = c.post("/api/jobs/dub", files=_files(face=media["fake"], audio=media[1.0]))  # right magic, not media
    assert_refused(r, 415, "not decodable")
    r = c.post("/api/jobs/dub", files=_files(face=media[1.0], audio=media[1.0]))  # audio where a face goes
    assert_refused(r, 415, "expected video or image")
    assert sorted((server["work"] / "jobs").iterdir()) == before  # refused jobs leave nothing behind
    still_serving(c)


def test_traversal_and_server_paths(server, media):
    c = server["client"]
    allowed = server["allowed"]
    outside = Path(media["face"])
    rel = os.path.relpath(outside, allowed)  # ../../.. up and into the media folder
    for path, status, words in [
        (str(allowed / rel), 403, "outside the allowed folders"),
        (str(allowed) + "/../" + outside.parent.name + "/face.mp4", 403, "outside the allowed folders"),
        (str(allowed / "link_out.wav"), 403, "outside the allowed folders"),
        ("/etc/passwd", 403, "outside the allowed folders"),
        (str(allowed / "missing.mp4"), 404, "no such file"),
    ]:
        r = c.post("/api/jobs/dub", data={"face_path": path, "text": "hello"})
        assert_refused(r, status, words)
        still_serving(c)
    # a path inside the root is accepted
    r = c.post("/api/jobs/dub", data={"face_path": str(allowed / "face.mp4"), "recognize": "false"},
               files=_files(audio=media[0.6]))
    assert r.status_code == 202, r.text
    assert wait(c, r.json()["id"])["state"] == "done"


def test_cancel_running_and_queued(server, media):
    c = server["client"]
    long_ids = [submit_dub(c, media["face"], media[5.0]) for _ in range(3)]  # 2 run, 1 waits
    deadline = time.monotonic() + 30
    while c.get(f"/api/jobs/{long_ids[0]}").json()["state"] != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    r = c.delete(f"/api/jobs/{long_ids[0]}")
    assert r.status_code == 200 and r.json()["state"] == "cancelled", r.text
    r = c.delete(f"/api/jobs/{long_ids[2]}")
    assert r.status_code == 200 and r.json()["state"] == "cancelled", r.text
    for job_id in (long_ids[0], long_ids[2]):
        assert_refused(c.get(f"/api/jobs/{job_id}/result"), 409, "cancelled")
        assert not (server["work"] / "jobs" / job_id / "out").exists()  # a cancelled job leaves no output
        assert_refused(c.delete(f"/api/jobs/{job_id}"), 409, "already cancelled")
    assert wait(c, long_ids[1])["state"] == "done"  # the others go on
    assert_refused(c.get("/api/jobs/nosuchjob"), 404, "no job")
    still_serving(c)


def test_failing_job_and_bad_options(server, media, tmp_path):
    from retalk.media import write_wav

    c = server["client"]
    silent = tmp_path / "silent.wav"
    write_wav(silent, np.zeros(16000, np.float32), 16000)
    st = wait(c, submit_dub(c, media["face"], silent))
    assert st["state"] == "failed" and "\n" not in st["error"] and "silent" in st["error"].lower(), st
    assert_refused(c.get(f"/api/jobs/{st['id']}/result"), 409, "failed")
    r = c.post("/api/jobs/dub", files=_files(face=media["face"], audio=media[1.0]), data={"engine": "nope"})
    assert_refused(r, 400, "unknown engine")
    r = c.post("/api/jobs/dub", files=_files(face=media["face"]))
    assert_refused(r, 400, "either an audio input or a text")
    # and a normal job still runs afterwards
    assert wait(c, submit_dub(c, media["face"], media[0.6]))["state"] == "done"


def test_openapi_schema(server):
    c = server["client"]
    schema = c.get("/api/openapi.json").json()
    for path in ("/api/jobs/dub", "/api/jobs/portrait", "/api/jobs/evaluate", "/api/jobs/{job_id}",
                 "/api/jobs/{job_id}/result"):
        assert path in schema["paths"], path
    assert "delete" in schema["paths"]["/api/jobs/{job_id}"]
    engines = c.get("/api/engines").json()
    assert engines["builtin"]["ready"] is True
    assert engines["wav2lip"]["ready"] is False and "github.com" in engines["wav2lip"]["note"]
    vrt = engines["videoretalking"]
    assert vrt["ready"] is False and "DNet.pt" in vrt["note"] and "expression.mat" in vrt["note"]
