"""`retalk doctor` opens every checkpoint it finds: a junk, a truncated and a good random-weight file."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="torch (retalk[neural]) not installed")

from retalk.doctor import check_checkpoint, report  # noqa: E402


def _random_state(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {k: (torch.randn(v.shape, generator=gen) * 0.05 if v.is_floating_point() else torch.zeros_like(v))
            for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def ck_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """wav2lip_gan.pth: 5 junk bytes; lipsync_expert.pth: a real file cut in half; syncnet_v2.model: good."""
    from retalk.networks.syncnet import SyncNetV2
    from retalk.networks.wav2lip import SyncNetColor

    folder = tmp_path_factory.mktemp("doctor_ck")
    (folder / "wav2lip_gan.pth").write_bytes(b"junk\n")
    whole = folder / "whole.tmp"
    torch.save({"state_dict": _random_state(SyncNetColor(), 1)}, whole)
    data = whole.read_bytes()
    (folder / "lipsync_expert.pth").write_bytes(data[: len(data) // 2])
    whole.unlink()
    torch.save(_random_state(SyncNetV2(), 2), folder / "syncnet_v2.model")
    return folder


def test_check_each_checkpoint(ck_dir: Path) -> None:
    assert check_checkpoint("syncnet", ck_dir / "syncnet_v2.model") == "OK"
    junk = check_checkpoint("wav2lip", ck_dir / "wav2lip_gan.pth")
    assert "corrupt" in junk and "\n" not in junk
    cut = check_checkpoint("lipsync_expert", ck_dir / "lipsync_expert.pth")
    assert "truncated" in cut and "\n" not in cut
    # a good file of another network: its keys do not fit
    wrong = check_checkpoint("lipsync_expert", ck_dir / "syncnet_v2.model")
    assert wrong != "OK" and "lipsync_expert" in wrong


def test_doctor_report_lists_name_size_sha_and_state(ck_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETALK_CHECKPOINTS", str(ck_dir))
    text = report()
    rows = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) > 5 and words[3] == "MB" and words[4] == "sha256":
            rows[words[1]] = (words[0], float(words[2]), words[5], " ".join(words[6:]))
    assert set(rows) == {"wav2lip_gan.pth", "lipsync_expert.pth", "syncnet_v2.model"}
    for fname, (name, mb, sha, _state) in rows.items():
        data = (ck_dir / fname).read_bytes()
        assert sha == hashlib.sha256(data).hexdigest()
        assert mb == pytest.approx(len(data) / 1e6, abs=0.05)
        assert name == {"wav2lip_gan.pth": "wav2lip", "lipsync_expert.pth": "lipsync_expert",
                        "syncnet_v2.model": "syncnet"}[fname]
    assert rows["syncnet_v2.model"][3] == "OK"
    assert "corrupt" in rows["wav2lip_gan.pth"][3]
    assert "truncated" in rows["lipsync_expert.pth"][3]
    engines = next(line for line in text.splitlines() if line.split()[:1] == ["wav2lip"])
    assert "unusable" in engines
