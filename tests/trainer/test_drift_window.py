"""The drift step on a time-partitioned capture (what freshness-serve writes) reads only its window."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import freshness_contract as contract
from freshness_trainer import cli, partitions

from tests.trainer.serve_kit import save_model


def capture_from(images: list[Path], root: Path, times: list[datetime]) -> None:
    """Lay sample images out as the server's capture does (image + sidecar per sample)."""
    for i, (img, when) in enumerate(zip(images, times, strict=True)):
        dest = Path(partitions.sample_path(str(root), when, f"{i:05d}", img.suffix))
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(img, dest)
        dest.with_suffix(".json").write_text('{"class": "cats"}')


def drift(tmp_path: Path, sample_dir: Path, model: Path, current: Path, *args: str) -> contract.StepResult:
    result = tmp_path / "result.json"
    code = cli.main(["drift", "--reference", str(sample_dir / "reference"), "--current", str(current),
                     "--model", str(model), "--device", "cpu", "--result-path", str(result), *args])
    res = contract.parse(result.read_text(encoding="utf-8"), expected_step="drift")
    assert code == 0 and res.ok, res.message
    return res


def test_drift_reads_only_the_window(sample_dir: Path, tmp_path: Path) -> None:
    model = save_model(tmp_path / "model.pt")
    now = datetime.now(UTC)
    old = sorted((sample_dir / "production" / "new-class").rglob("*.png"))[:30]
    recent = sorted((sample_dir / "production" / "iid").rglob("*.png"))[:40]
    root = tmp_path / "capture"
    capture_from(old, root, [now - timedelta(days=30, minutes=i) for i in range(len(old))])
    capture_from(recent, root, [now - timedelta(hours=20, minutes=-i) for i in range(len(recent))])

    windowed = drift(tmp_path, sample_dir, model, root, "--window", "24h", "--min-samples", "40")
    assert windowed.drift.samples == 40
    w = windowed.drift.window
    assert w is not None and w.samples == 40 and w.start and w.end
    start, end = (datetime.fromisoformat(t.replace("Z", "+00:00")) for t in (w.start, w.end))
    assert now - timedelta(hours=21) < start <= end < now - timedelta(hours=19)
    everything = drift(tmp_path, sample_dir, model, root, "--min-samples", "40")
    assert everything.drift.samples == 70 and everything.drift.window is not None
    assert everything.drift.window.samples == 70
    newest = drift(tmp_path, sample_dir, model, root, "--newest", "35", "--min-samples", "10")
    assert newest.drift.samples == 35


def test_a_labelled_folder_is_read_as_before(sample_dir: Path, tmp_path: Path) -> None:
    model = save_model(tmp_path / "model.pt")
    res = drift(tmp_path, sample_dir, model, sample_dir / "production" / "iid", "--window", "1h", "--min-samples", "10")
    assert res.drift.samples == 120 and res.drift.accuracy is not None and res.drift.window is None


def test_bad_window_is_refused(tmp_path: Path) -> None:
    for flag, value, says in (("--window", "yesterday", "'yesterday' is not a duration"),
                              ("--newest", "0", "--newest 0: expected a whole number >= 1")):
        result = tmp_path / f"{flag[2:]}.json"
        code = cli.main(["drift", "--reference", "r", "--current", "c", "--model", "m", flag, value,
                         "--result-path", str(result)])
        res = contract.parse(result.read_text(encoding="utf-8"), expected_step="drift")
        assert code == 1 and not res.ok and res.reason == "InvalidArgument", res
        assert says in res.message, res.message
