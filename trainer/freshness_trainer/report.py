"""The drift report a user opens: our verdict first, what changed, then Evidently's per-column detail.

One self-contained HTML file, in this order:

1. **Verdict**: detected or not, the score (1 - Simes p-value) against the threshold, the rule that
   decided (statistical, accuracy drop, both or neither), the labelled accuracy when known, the
   number of production and reference samples and, when known, the time window they came from;
   then **the three signals** (issue 14): distribution (the verdict's test), the estimated accuracy
   without labels against the reference accuracy, and the novelty share against the reference rate.
   Which of them starts a retrain is the operator's ``spec.drift.trigger``;
2. **Predicted classes**: the share of each class the serving model predicted on the reference
   and on production (a new class shows up here as a shift between the known ones);
3. **Most unlike the reference**: thumbnails (base64 PNG) of the production images that a
   classifier telling production from reference images (logistic regression on the serving
   model's last hidden layer, the space the check's principal components come from) places most
   confidently in production: what production has and the reference lacks. On the sample set's
   bee batch (30% bees) it picked 11 bees of 12, where the alternatives we tried picked 3 to 7
   (distance to the nearest reference image in the feature table or the embeddings, lowest
   confidence; measured once on the test fixtures' model, not a benchmark). Each carries its
   source file, predicted class and confidence;
4. **Evidently's per-column detail**, embedded unchanged in an iframe.

``unlike``, ``class_shares``, ``gallery`` and ``render`` are pure (``gallery`` fits its classifier on
at most EMBEDDING_ROWS embeddings per side); ``write`` uploads the file (fsspec).
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import fsspec
import numpy as np
import pandas as pd
import torch
from numpy.typing import NDArray
from PIL import Image

from freshness_trainer import impact
from freshness_trainer.drift_rule import DEFAULT_ACCURACY_DROP, Verdict

if TYPE_CHECKING:
    from freshness_trainer.drift_step import Impact

GALLERY_SIZE = 12
THUMBNAIL_PX = 96
EMBEDDING_ROWS = 2000
"""At most this many images of each side go into the gallery's classifier (time and memory bound)."""


@dataclass(frozen=True)
class Sample:
    """One production image in the gallery."""

    source: str
    """The file, relative to the production folder (e.g. ``bees/0012.png``)."""
    png_base64: str
    predicted: str
    confidence: float
    production_score: float
    """P(production) from the reference-vs-production classifier (``unlike``)."""


@dataclass(frozen=True)
class Context:
    """What the verdict was computed on."""

    samples: int
    reference_samples: int
    current: str
    reference: str
    window: str | None = None
    """The time range of a windowed capture, when the check read one."""
    allowed_drop: float = DEFAULT_ACCURACY_DROP
    """The accuracy drop (``--accuracy-drop``) above which labelled production data counts as drift."""


def spread(n: int, limit: int) -> NDArray[np.int64]:
    """At most ``limit`` row positions out of ``n``, evenly spread (all of them when n <= limit). Pure."""
    return np.linspace(0, n - 1, min(n, limit)).round().astype(np.int64) if n else np.zeros(0, np.int64)


def unlike(reference: NDArray[np.float64], current: NDArray[np.float64], k: int = GALLERY_SIZE
           ) -> list[tuple[int, float]]:
    """The ``k`` current rows a reference-vs-production classifier finds most typical of production. Pure.

    A ridge-regularised logistic regression on the embeddings, standardised by the reference,
    fitted on all rows; returns (current row, P(production)) pairs, most typical first. Fitted and
    scored on the same rows on purpose: it describes the difference, it predicts nothing.
    """
    from sklearn.linear_model import LogisticRegression

    mean, std = reference.mean(axis=0), reference.std(axis=0)
    std[std == 0] = 1.0
    x = (np.vstack([reference, current]) - mean) / std
    y = np.r_[np.zeros(len(reference)), np.ones(len(current))]
    p = LogisticRegression(C=0.1, max_iter=2000).fit(x, y).predict_proba(x[len(reference) :])[:, 1]
    order = np.argsort(-p, kind="stable")[:k]
    return [(int(i), float(p[i])) for i in order]


def class_shares(table: pd.DataFrame) -> dict[str, float]:
    """Share of each predicted class. Pure."""
    counts = table["predicted"].value_counts()
    return {str(c): float(n) / max(len(table), 1) for c, n in sorted(counts.items())}


def thumbnail(image: torch.Tensor, px: int = THUMBNAIL_PX) -> str:
    """A uint8 (3, H, W) image as a base64 PNG of ``px`` x ``px``."""
    array = image.detach().cpu().permute(1, 2, 0).numpy().astype(np.uint8)
    picture = Image.fromarray(array).resize((px, px), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def gallery(
    reference_emb: NDArray[np.float64],
    current_emb: NDArray[np.float64],
    current: torch.Tensor,
    table: pd.DataFrame,
    sources: Sequence[str],
    k: int = GALLERY_SIZE,
) -> list[Sample]:
    """The ``k`` production images most unlike the reference, with their thumbnails.

    ``reference_emb`` and ``current_emb``: the serving model's last hidden layer on each side (the
    check computed them already); at most EMBEDDING_ROWS rows of each side go into the classifier.
    """
    ref_rows, cur_rows = spread(len(reference_emb), EMBEDDING_ROWS), spread(len(current_emb), EMBEDDING_ROWS)
    samples = []
    for row, score in unlike(reference_emb[ref_rows], current_emb[cur_rows], k):
        i = int(cur_rows[row])
        samples.append(
            Sample(
                source=sources[i] if i < len(sources) else f"image {i}",
                png_base64=thumbnail(current[i]),
                predicted=str(table["predicted"].iloc[i]),
                confidence=float(table["confidence"].iloc[i]),
                production_score=score,
            )
        )
    return samples


def relative(files: Sequence[str], root: str) -> list[str]:
    """File paths relative to the folder ``root`` (a URI or path) they were listed from. Pure."""
    _, base = fsspec.core.url_to_fs(root)
    base = base.rstrip("/") + "/"
    return [f[len(base) :] if f.startswith(base) else f for f in files]


def _rule(v: Verdict) -> str:
    statistical = v.score >= v.threshold
    if statistical and v.accuracy_drifted:
        return "both: the statistical test and the accuracy drop"
    if statistical:
        return "statistical: the combined per-feature test (score at or above the threshold)"
    if v.accuracy_drifted:
        return "accuracy: the labelled accuracy dropped by more than the allowed drop"
    return "none: the score is below the threshold and no accuracy drop was found"


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1d2433;max-width:1200px}
h1{font-size:24px;margin:0 0 12px} h2{font-size:18px;margin:28px 0 8px}
.verdict{border-radius:8px;padding:16px 20px;border:2px solid}
.verdict.detected{background:#fdecea;border-color:#d93025} .verdict.clear{background:#e6f4ea;border-color:#188038}
.verdict .headline{font-size:22px;font-weight:700;margin-bottom:8px}
table{border-collapse:collapse} td,th{padding:4px 12px 4px 0;text-align:left;vertical-align:top}
.bar{display:inline-block;height:12px;background:#4a7fd6;vertical-align:middle}
.bar.ref{background:#9aa5b8}
.gallery{display:flex;flex-wrap:wrap;gap:12px}
.gallery figure{margin:0;width:120px;font-size:12px;text-align:center}
.gallery img{width:96px;height:96px;image-rendering:pixelated;border:1px solid #ccd}
.note{color:#555;font-size:13px} iframe{width:100%;height:1400px;border:1px solid #ccd}
"""


def _share_rows(reference: dict[str, float], current: dict[str, float]) -> str:
    rows = []
    for c in sorted(set(reference) | set(current)):
        r, p = reference.get(c, 0.0), current.get(c, 0.0)
        rows.append(
            f"<tr><td>{html.escape(c)}</td>"
            f'<td><span class="bar ref" style="width:{r * 200:.0f}px"></span> {r:.0%}</td>'
            f'<td><span class="bar" style="width:{p * 200:.0f}px"></span> {p:.0%}</td></tr>'
        )
    return "".join(rows)


def _signals(found: Impact | None, v: Verdict) -> str:
    """The three signals' rows (issue 14); empty when the check computed none."""
    if found is None:
        return ""
    dist = "changed" if v.score >= v.threshold else "unchanged"
    rows = [f'<tr class="signal" data-signal="distribution"><th>Distribution</th><td>{dist}: score '
            f"{v.score:.4f} against {v.threshold:.4f}. Says the inputs changed, not that the model got worse; "
            "under the operator's default trigger (impact) it alone does not start a retrain</td></tr>"]
    est, ref = found.estimate, found.reference_accuracy
    if est is None:
        text = "not available: the model file carries no calibration (trained before issue 14)"
    else:
        against = f" against {ref:.1%} on the held-out split: a drop of {(ref - est.value) * 100:.1f} points" if (
            ref is not None) else ""
        text = (f"{est.value:.1%} (95% interval {est.low:.1%} to {est.high:.1%}){against}. From the calibrated "
                "confidence, no labels, novel images counted as errors when novelty is detected; blind to "
                "classes the model has never seen that look like known ones")
    rows.append(f'<tr class="signal" data-signal="estimated-accuracy"><th>Estimated accuracy</th><td>{text}</td></tr>')
    n = found.novelty
    rows.append(
        f'<tr class="signal" data-signal="novelty" data-detected="{str(n.detected).lower()}"><th>Novelty</th>'
        f"<td>{'detected' if n.detected else 'not detected'}: {n.share:.1%} of production images are farther "
        f"from every reference image than {impact.DISTANCE_PERCENTILE:g}% of the reference's own (in the model's "
        f"last hidden layer{' or in its early texture features' if n.early_threshold is not None else ''}), "
        f"or excite the "
        f"model's last hidden layer {impact.NORM_MARGIN:g} times more strongly than almost any reference image "
        f"(expected {n.reference_rate:.1%}; p = {n.p_value:.3g}). Images unlike "
        f"anything the model was validated on, e.g. a new class or another domain</td></tr>")
    kind = ("the model's held-out images (validation and reference split)" if found.reference_kind == "heldOut"
            else "the reference folder")
    return (f'<section id="signals"><h2>Signals</h2><table>{"".join(rows)}</table>'
            f'<p class="note">Reference: {kind}.</p></section>')


def render(
    verdict: Verdict,
    context: Context,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    samples: Sequence[Sample],
    evidently_html: str = "",
    signals: Impact | None = None,
) -> str:
    """The whole report as one HTML document. Pure."""
    v, e = verdict, html.escape
    state = "detected" if v.detected else "clear"
    headline = "Drift detected" if v.detected else "No drift detected"
    accuracy = ""
    if v.accuracy is not None:
        a = v.accuracy
        accuracy = (
            f"<tr><th>Accuracy (labelled)</th><td>{a.current:.1%} on production vs {a.reference:.1%} at training: "
            f"a drop of {a.drop * 100:.1f} points, {'more' if v.accuracy_drifted else 'not more'} than the allowed "
            f"{context.allowed_drop * 100:.1f} points</td></tr>"
        )
    window = f"<tr><th>Time window</th><td>{e(context.window)}</td></tr>" if context.window else ""
    top = ", ".join(e(c) for c in v.top_features(5)) or "none"
    figures = "".join(
        f'<figure class="sample" data-source="{e(s.source)}" data-predicted="{e(s.predicted)}">'
        f'<img alt="{e(s.source)}" src="data:image/png;base64,{s.png_base64}">'
        f"<figcaption><b>{e(s.predicted)}</b> {s.confidence:.0%}<br>{e(s.source)}<br>"
        f"P(production) {s.production_score:.2f}</figcaption></figure>"
        for s in samples
    )
    detail = (
        f'<iframe title="Evidently per-column report" srcdoc="{e(evidently_html, quote=True)}"></iframe>'
        if evidently_html
        else '<p class="note">Not produced.</p>'
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Drift report: {e(headline)}</title>
<style>{CSS}</style></head><body>
<h1>Drift report</h1>
<section id="verdict" class="verdict {state}" data-detected="{str(v.detected).lower()}">
<div class="headline">{headline}</div>
<table>
<tr><th>Score</th><td>{v.score:.4f} against the threshold {v.threshold:.4f}
 (score = 1 &minus; Simes' combined p-value of the per-feature tests)</td></tr>
<tr><th>Decided by</th><td>{e(_rule(v))}</td></tr>
{accuracy}
<tr><th>Drifted features</th><td>{len(v.drifted)} of {len(v.pvalues)} at p &lt; 0.05
 (share {v.share:.0%}, reported, not decided on); most significant: {top}</td></tr>
<tr><th>Samples</th><td>{context.samples} production images ({e(context.current)})
 against {context.reference_samples} reference images ({e(context.reference)})</td></tr>
{window}
</table></section>
{_signals(signals, v)}
<section id="classes"><h2>Predicted classes: reference vs production</h2>
<table><tr><th>class</th><th>reference</th><th>production</th></tr>
{_share_rows(class_shares(reference), class_shares(current))}</table>
<p class="note">What the serving model predicted; it knows only its training classes, so images of a
new class are spread over the known ones.</p></section>
<section id="gallery"><h2>Production images most unlike the reference</h2>
<p class="note">The {len(samples)} production images most typical of production: a classifier trained to
tell production from reference images on the serving model's last hidden layer gives them the
highest P(production). What production has and the reference lacks shows up here.</p>
<div class="gallery">{figures}</div></section>
<section id="evidently"><h2>Per-column detail (Evidently)</h2>
<p class="note">One test per feature column (Kolmogorov-Smirnov, chi-square for <code>predicted</code>).
Evidently draws each column against the row number ("Index binned"): rows are the images in
file-name order, not time, so read those plots as value distributions, not trends.</p>
{detail}</section>
</body></html>
"""


def write(uri: str, document: str) -> None:
    """Upload the report to ``uri`` (a path or fsspec URI), creating its folder."""
    fs, path = fsspec.core.url_to_fs(uri)
    parent = os.path.dirname(path)
    if parent:
        fs.makedirs(parent, exist_ok=True)
    with fs.open(path, "w", encoding="utf-8") as f:
        f.write(document)
