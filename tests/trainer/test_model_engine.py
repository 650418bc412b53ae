"""Model file round trip, optional weights, the CPU loop's building blocks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from freshness_trainer import engine, features, model, scores
from freshness_trainer.errors import TrainerError


def test_torchvision_alexnet_with_num_classes() -> None:
    net = model.build("alexnet", 3)
    assert net.classifier[6].out_features == 3  # type: ignore[index,union-attr]
    assert net.classifier[1].out_features == 4096  # type: ignore[index,union-attr]
    narrow = model.build("alexnet", 2, hidden_units=64)
    assert narrow.classifier[4].in_features == 64  # type: ignore[index,union-attr]
    with pytest.raises(TrainerError, match="resnet"):
        model.build("resnet", 2)


def test_save_load_round_trip(tmp_path: Path) -> None:
    net = model.build("alexnet", 2, hidden_units=32)
    path = tmp_path / "m.pt"
    model.save(model.Checkpoint(net, ["cats", "dogs"], 64, metrics={"val_acc": 0.75}), str(path))
    back = model.load(str(path))
    assert back.classes == ["cats", "dogs"] and back.image_size == 64 and back.metrics == {"val_acc": 0.75}
    x = torch.rand(2, 3, 64, 64)
    net.eval()
    torch.testing.assert_close(back.model(x), net(x))


def test_the_calibration_and_held_out_split_travel_with_the_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                  ) -> None:
    monkeypatch.setattr(model, "MAX_HELDOUT_ROWS", 3)
    n = 5
    held = model.HeldOut(torch.rand(n, 32), torch.rand(n, 2), torch.tensor([0, 1, 0, 1, 1]),
                         {"brightness": torch.rand(n, dtype=torch.float64)}, early=torch.rand(n, 18))
    cal = {"method": "platt-logit-confidence", "a": 0.9, "b": 0.1, "cov": [[0.1, 0.0], [0.0, 0.2]], "samples": n}
    path = tmp_path / "m.pt"
    model.save(model.Checkpoint(model.build("alexnet", 2, hidden_units=32), ["cats", "dogs"], 64,
                                calibration=cal, heldout=held), str(path))
    back = model.load(str(path))
    assert back.calibration == cal and back.heldout is not None and len(back.heldout) == 3  # evenly spread rows
    rows = torch.tensor([0, 2, 4])
    torch.testing.assert_close(back.heldout.embeddings, held.embeddings[rows], atol=1e-3, rtol=1e-3)  # float16
    torch.testing.assert_close(back.heldout.logits, held.logits[rows])
    assert back.heldout.labels.tolist() == [0, 0, 1]
    torch.testing.assert_close(back.heldout.stats["brightness"], held.stats["brightness"][rows])
    assert held.early is not None and back.heldout.early is not None
    torch.testing.assert_close(back.heldout.early, held.early[rows], atol=1e-3, rtol=1e-3)  # float16
    without = tmp_path / "without-early.pt"  # written before the third novelty test: no early features
    model.save(model.Checkpoint(model.build("alexnet", 2, hidden_units=32), ["cats", "dogs"], 64,
                                heldout=dataclasses.replace(held, early=None)), str(without))
    reread = model.load(str(without)).heldout
    assert reread is not None and reread.early is None
    older = tmp_path / "old.pt"  # a model file written before issue 14 loads without them
    model.save(model.Checkpoint(model.build("alexnet", 2, hidden_units=32), ["cats", "dogs"], 64), str(older))
    assert model.load(str(older)).heldout is None and model.load(str(older)).calibration is None


def test_local_weights_file_starts_the_trunk(tmp_path: Path) -> None:
    """An ImageNet-shaped state_dict (1000 classes) seeds everything but the last layer."""
    donor = model.build("alexnet", 1000, hidden_units=32)
    torch.save(donor.state_dict(), tmp_path / "w.pt")
    net = model.build("alexnet", 2, str(tmp_path / "w.pt"), hidden_units=32)
    torch.testing.assert_close(net.features[0].weight, donor.features[0].weight)  # type: ignore[index,union-attr]
    with pytest.raises(TrainerError) as err:
        model.build("alexnet", 2, str(tmp_path / "missing.pt"))
    assert err.value.reason == "ModelNotFound"


def test_bad_model_files(tmp_path: Path) -> None:
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(TrainerError) as err:
        model.load(str(tmp_path / "junk.pt"))
    assert err.value.reason == "InvalidModel" and "junk.pt" in err.value.message


def test_cpu_settings_and_augmentation_shapes() -> None:
    s = engine.DeviceOptions.for_device("cpu", compile=True)
    assert (s.amp, s.channels_last, s.compile) == (False, False, False)
    x = engine.normalize(torch.randint(0, 255, (4, 3, 64, 64), dtype=torch.uint8), s)
    y = engine.augment(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and not torch.equal(x, y)


def test_fit_learns_a_trivial_task() -> None:
    """Bright vs dark images: a few AdamW steps separate them (the loop wiring works)."""
    g = torch.Generator().manual_seed(0)
    dark = torch.randint(0, 60, (16, 3, 64, 64), generator=g, dtype=torch.uint8)
    bright = torch.randint(190, 255, (16, 3, 64, 64), generator=g, dtype=torch.uint8)
    images, labels = torch.cat([dark, bright]), torch.tensor([0] * 16 + [1] * 16)
    torch.manual_seed(0)
    s = engine.DeviceOptions.for_device("cpu")
    fitted = engine.fit(model.build("alexnet", 2, hidden_units=32), images, labels, optimizer="adamw",
                        lr=3e-4, momentum=0.9, batch_size=16, epochs=4, seed=0, settings=s)
    scored = scores.score(engine.predict(fitted.model, images, batch_size=32, settings=s), labels,
                              ["dark", "bright"])
    assert fitted.losses[-1] < fitted.losses[0]
    assert scored.accuracy == 1.0 and scored.confusion == [[16, 0], [0, 16]]
    assert fitted.best_epoch == 4 and fitted.val_accuracy == []  # no validation data: the last epoch


def test_warmup_cosine_ramps_up_then_decays_to_zero() -> None:
    f = engine.warmup_cosine(10, 4)
    assert [f(s) for s in range(4)] == [0.2, 0.4, 0.6, 0.8]
    assert f(4) == 1.0 and f(10) == 0.0
    assert f(7) == pytest.approx(0.5)
    assert [engine.warmup_cosine(10, 0)(s) for s in (0, 5)] == [1.0, pytest.approx(0.5)]


def test_fit_keeps_the_best_epoch_on_the_validation_data() -> None:
    """Validation labels that are the training labels swapped: the better the model learns, the worse
    it does there, so the best validation epoch is the first and its weights come back."""
    g = torch.Generator().manual_seed(0)
    dark = torch.randint(0, 60, (16, 3, 64, 64), generator=g, dtype=torch.uint8)
    bright = torch.randint(190, 255, (16, 3, 64, 64), generator=g, dtype=torch.uint8)
    images, labels = torch.cat([dark, bright]), torch.tensor([0] * 16 + [1] * 16)
    swapped = 1 - labels
    s = engine.DeviceOptions.for_device("cpu")
    fitted = engine.fit(model.build("alexnet", 2, hidden_units=32), images, labels, optimizer="adamw",
                        lr=3e-4, momentum=0.9, batch_size=16, epochs=4, seed=0, settings=s,
                        val_images=images, val_labels=swapped)
    # Every epoch scores 0 on the swapped labels; the tie goes to the lowest validation loss: epoch 1.
    assert fitted.val_accuracy == [0.0] * 4 and fitted.val_loss[0] < fitted.val_loss[-1]
    assert fitted.best_epoch == 1
    logits = engine.predict(fitted.model, images, batch_size=32, settings=s)
    final = scores.score(logits, swapped, ["dark", "bright"])
    assert final.loss == pytest.approx(fitted.val_loss[0], rel=1e-4)


@pytest.mark.parametrize(
    ("accuracy", "per_class", "expected"),
    [
        (0.9, {"cats": 0.9, "dogs": 0.9}, True),
        (1 / 3, {"bees": 1.0, "cats": 0.0, "dogs": 0.0}, False),  # one class for everything
        (0.667, {"bees": 0.0, "cats": 1.0, "dogs": 1.0}, False),  # a class never right
        (0.37, {"bees": 0.3, "cats": 0.4, "dogs": 0.4}, False),  # within 0.05 of chance (1/3)
        (0.40, {"bees": 0.3, "cats": 0.5, "dogs": 0.4}, True),
        (0.54, {"cats": 0.5, "dogs": 0.58}, False),  # 2 classes: chance 0.5
        (0.0, {}, False),
    ],
)
def test_learned_flags_a_model_at_chance(accuracy: float, per_class: dict[str, float], expected: bool) -> None:
    assert scores.learned(accuracy, per_class) is expected


def test_metrics_carry_the_learned_flag() -> None:
    everything_cats = scores.score(torch.tensor([[2.0, 0.0]] * 4), torch.tensor([0, 0, 1, 1]), ["cats", "dogs"])
    assert everything_cats.metrics()["learned"] == 0.0
    right = scores.score(torch.tensor([[2.0, 0.0], [0.0, 2.0]]), torch.tensor([0, 1]), ["cats", "dogs"])
    assert right.metrics()["learned"] == 1.0


def test_early_features_ignore_brightness_and_contrast_but_not_the_picture() -> None:
    """The third novelty test's features (``features.early_features``): each image is standardised by
    its own mean and deviation first, so scaling or shifting every pixel value (a brightness or
    contrast change that clips nothing) leaves them unchanged, while another image moves them."""
    torch.manual_seed(0)
    ckpt = model.Checkpoint(model.build("alexnet", 2, hidden_units=32), ["cats", "dogs"], 64)
    images = torch.randint(40, 160, (4, 3, 64, 64), dtype=torch.uint8)
    settings = engine.DeviceOptions.for_device("cpu")
    base = features.early_features(ckpt, images, settings)
    assert base is not None and base.shape == (4, 192 * features.EARLY_GRID ** 2)
    darker = (images.double() * 0.8).round().to(torch.uint8)  # 20% darker, no clipping
    contrast = ((images.double() - 100) * 1.2 + 100).round().clamp(0, 255).to(torch.uint8)
    for changed in (darker, contrast):
        moved = features.early_features(ckpt, changed, settings)
        assert moved is not None
        # only the rounding to whole pixel values remains
        assert np.abs(moved - base).max() < 0.05 * np.abs(base).max()
    other = features.early_features(ckpt, images.flip(0), settings)
    assert other is not None and np.abs(other - base).max() > 0.2 * np.abs(base).max()
    plain = model.Checkpoint(torch.nn.Linear(3, 2), ["cats", "dogs"], 64)  # no features trunk: no third test
    assert features.early_features(plain, images, settings) is None
