"""freshness_trainer.report without a model: which images are "unlike", the rule named, the HTML."""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
import pytest
import torch
from freshness_trainer import drift_rule, report
from PIL import Image


def table(values: list[float], predicted: list[str] | None = None) -> pd.DataFrame:
    t = pd.DataFrame({"pc1": values, "confidence": [0.9] * len(values)})
    t["predicted"] = predicted or ["cats"] * len(values)
    return t


def test_unlike_picks_what_production_has_and_the_reference_lacks() -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(0.0, 1.0, (200, 8))
    # 70% like the reference, 30% a new cluster (rows 140..199): the gallery must be all new.
    current = np.vstack([rng.normal(0.0, 1.0, (140, 8)), rng.normal(0.0, 1.0, (60, 8)) + 4.0])
    ranked = report.unlike(reference, current, k=12)
    assert all(row >= 140 for row, _ in ranked), ranked
    scores = [p for _, p in ranked]
    assert scores == sorted(scores, reverse=True) and scores[-1] > 0.5
    assert report.unlike(reference, current, k=12) == ranked  # deterministic


def test_spread_picks_evenly_and_everything_when_small() -> None:
    assert report.spread(5, 10).tolist() == [0, 1, 2, 3, 4]
    assert report.spread(101, 3).tolist() == [0, 50, 100]
    assert report.spread(0, 3).tolist() == []


def test_a_thumbnail_is_a_png_of_the_image() -> None:
    image = torch.full((3, 8, 8), 255, dtype=torch.uint8)
    picture = Image.open(io.BytesIO(base64.b64decode(report.thumbnail(image))))
    assert picture.format == "PNG" and picture.size == (report.THUMBNAIL_PX, report.THUMBNAIL_PX)
    assert np.asarray(picture).min() == 255


def test_relative_paths_are_relative_to_the_listed_folder() -> None:
    files = ["/data/prod/bees/1.png", "/elsewhere/x.png"]
    assert report.relative(files, "/data/prod/") == ["bees/1.png", "/elsewhere/x.png"]


@pytest.mark.parametrize(
    ("score", "accuracy", "rule"),
    [
        (0.99, None, "statistical"),
        (0.50, drift_rule.Accuracy(current=0.6, reference=0.9), "accuracy"),
        (0.99, drift_rule.Accuracy(current=0.6, reference=0.9), "both"),
        (0.50, drift_rule.Accuracy(current=0.89, reference=0.9), "none"),
    ],
)
def test_the_verdict_names_the_rule_that_decided(score: float, accuracy: drift_rule.Accuracy | None, rule: str) -> None:
    pvalues = {"pc1": 1.0 - score, "predicted": 0.5}
    verdict = drift_rule.decide(pvalues, threshold=0.95, accuracy=accuracy)
    page = report.render(verdict, report.Context(200, 300, "s3://prod", "data/train"), table([0.0]), table([1.0]), [])
    assert f"<tr><th>Decided by</th><td>{rule}" in page
    assert f'data-detected="{str(rule != "none").lower()}"' in page
    assert "200 production images (s3://prod)" in page and "300 reference images" in page
    assert ("Accuracy (labelled)" in page) == (accuracy is not None)
    if accuracy is not None:
        assert f"a drop of {accuracy.drop * 100:.1f} points" in page and "the allowed 5.0" in page


def test_the_window_is_shown_when_known_and_evidently_is_embedded_escaped() -> None:
    verdict = drift_rule.decide({"pc1": 0.5}, threshold=0.95)
    context = report.Context(10, 10, "cur", "ref", window="2026-12-01T00:00Z to 2026-12-02T00:00Z")
    page = report.render(verdict, context, table([0.0]), table([0.0]), [], '<html><p class="x">"Evidently"</p></html>')
    assert "2026-12-01T00:00Z to 2026-12-02T00:00Z" in page
    assert 'srcdoc="&lt;html&gt;&lt;p class=&quot;x&quot;&gt;&quot;Evidently&quot;' in page
    assert page.index('id="verdict"') < page.index('id="classes"') < page.index('id="gallery"') < page.index(
        'id="evidently"'
    )
    shares = report.class_shares(table([0.0] * 4, ["cats", "cats", "dogs", "cats"]))
    assert shares == {"cats": 0.75, "dogs": 0.25}


def test_the_three_signals_are_shown_after_the_verdict() -> None:
    from freshness_trainer import drift_step, impact

    verdict = drift_rule.decide({"pc1": 0.001}, threshold=0.95)  # the distribution test fires
    found = drift_step.Impact(impact.Estimate(0.912, 0.88, 0.94), 0.933,
                          impact.Novelty(0.31, 0.016, 1e-9, True), "heldOut")
    page = report.render(verdict, report.Context(10, 10, "cur", "ref"), table([0.0]), table([0.0]), [],
                         signals=found)
    assert page.index('id="verdict"') < page.index('id="signals"') < page.index('id="classes"')
    assert 'data-signal="distribution"><th>Distribution</th><td>changed' in page
    assert "91.2% (95% interval 88.0% to 94.0%) against 93.3% on the held-out split: a drop of 2.1 points" in page
    assert 'data-signal="novelty" data-detected="true"' in page and "31.0% of production images" in page
    assert "the model's held-out images (validation and reference split)" in page
    legacy = drift_step.Impact(None, None, impact.Novelty(0.0, 0.016, 1.0, False), "folder")
    page = report.render(verdict, report.Context(10, 10, "cur", "ref"), table([0.0]), table([0.0]), [],
                         signals=legacy)
    assert "not available: the model file carries no calibration" in page and "the reference folder" in page
    assert 'id="signals"' not in report.render(verdict, report.Context(1, 1, "c", "r"), table([0.0]), table([0.0]), [])
