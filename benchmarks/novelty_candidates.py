"""Per-image novelty scores: how far the new class lies from the held-out reference, per candidate (issue 14).

    python benchmarks/novelty_candidates.py [--model M [--source FOLDER]] [--iid 1500] [--bees 800]

The impact trigger's novelty test (``impact.novelty_test``) counts a window's images beyond a
percentile of the reference's own scores; it can only find the new class when many of the new
class's images lie beyond it. This measures that per image, offline, for the score in use and the
standard candidates of the out-of-distribution literature, each against the serving model's own
held-out images (its validation split and reference split, rebuilt with the prepare stage: the
stored penultimate embeddings are compared with the rebuilt ones and the difference printed):

* ``knn-<layer>``: cosine distance to the nearest reference image of L2-normalised features
  ("deep nearest neighbours", Sun et al. 2022); ``knn-pen`` is the distance test in use;
* ``maha-<layer>``: class-conditional Mahalanobis distance with one shared covariance shrunk by
  Ledoit-Wolf (Lee et al. 2018; the reference's labels), ``mahaU`` the same on L2-normalised rows;
  the reference's own scores are cross-fitted (10 folds) so its percentiles are out-of-sample;
* ``energy``: ``-logsumexp(logits)`` (Liu et al. 2020); ``norm-pen``: the feature-norm test's score.

Layers: ``conv3`` and ``conv5`` (AlexNet's third and fifth convolution, ReLU, global-average-pooled),
``s-pool2`` and ``s-conv3`` (the same maps average-pooled to 3x3, keeping where a stroke is), ``pen``
(the last hidden layer, the drift step's embedding). Sets: fresh production renders (iid), the new
class (bees), five shifts of the iid set (benchmarks/drift_shifts.py) that drift_quality.py measures
as harmless (20% darker among them), noise sd = 0.08, 30% darker and 30° rotation (6.5, 4.9 and 9.7
points there), and line drawings (another domain). A cell is the share of the set's images beyond the reference's
95th | 99th percentile of that score; iid should read about 0.05 | 0.01.

``z-pool2`` and ``z-conv3`` are the same maps of each image standardised by its own mean and deviation
(``zc-``: per channel); ``z-pool2`` is ``features.early_features``, the impact rule's third test.

A second table runs the impact rule's novelty test itself (``impact.novelty_test``: the share beyond
the 90th percentile of the nearest-neighbour distance, plus the feature-norm test; p < 0.02) with the
distance column computed on each layer, and the rule as built (last-layer distance, norm and the
``z-pool2`` distance, three tests), over ``--reps`` random windows per row: iid, the harmless
shifts and noise sd = 0.08 at n = 500, bees mixed into iid at 30% (n = 150, the demo's window) and
10% (n = 500 and 200), and ``--mix``, a production folder drawn as it is (e.g. the demo's
``production/new-class``), at n = 150.

Without ``--model`` the sample project's model is trained as ``dvc exp run`` does (drift_quality.py);
``--source``: the image folder a given model was trained on (``data.source``; '' = the sample set),
so its held-out split can be rebuilt with params.yaml's split settings.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from sklearn.covariance import LedoitWolf

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "trainer", ROOT / "contract"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from freshness_trainer import data, engine, features, impact, model, params, sampledata  # noqa: E402
from freshness_trainer.stages import prepare  # noqa: E402

from benchmarks import drift_quality, drift_shifts  # noqa: E402

Array = NDArray[np.float64]
GAP = {"conv3": 7, "conv5": 11}  # index in AlexNet's ``features`` of the ReLU after the convolution
SPATIAL = {"s-pool2": 5, "s-conv3": 7}
# the same maps of the image standardised per image (z: one mean and sd; zc: per channel)
ZSPATIAL = [p + name[1:] for p in ("z", "zc") for name in SPATIAL]
SETTINGS = engine.DeviceOptions.for_device("cpu")
POOL_SEED = drift_quality.POOL_SEED


@torch.no_grad()
def layer_features(ckpt: model.Checkpoint, images: torch.Tensor, batch: int = 256) -> dict[str, Array]:
    """Per image: pooled convolutional features, the last hidden layer (``pen``) and the logits."""
    net = model.unwrap(ckpt.model).eval()
    trunk, pool, classifier = net.features, net.avgpool, net.classifier
    assert isinstance(trunk, torch.nn.Sequential) and isinstance(pool, torch.nn.Module)
    assert isinstance(classifier, torch.nn.Sequential)
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in [*GAP, *SPATIAL, *ZSPATIAL, "pen", "logits"]}
    for start in range(0, len(images), batch):
        raw = images[start:start + batch]
        for prefix, dims in (("z", (1, 2, 3)), ("zc", (2, 3))):
            z = raw.double() / 255.0
            z = ((z - z.mean(dims, keepdim=True)) / z.std(dims, keepdim=True).clamp_min(1e-3)).float()
            for i, layer in enumerate(trunk):
                z = layer(z)
                for name, j in SPATIAL.items():
                    if i == j:
                        parts[prefix + name[1:]].append(
                            torch.flatten(torch.nn.functional.adaptive_avg_pool2d(z, 3), 1))
                if i >= max(SPATIAL.values()):
                    break
        x = engine.normalize(raw, SETTINGS)
        for i, layer in enumerate(trunk):
            x = layer(x)
            for name, j in GAP.items():
                if i == j:
                    parts[name].append(x.mean((2, 3)))
            for name, j in SPATIAL.items():
                if i == j:
                    parts[name].append(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 3), 1))
        x = torch.flatten(pool(x), 1)
        for layer in list(classifier)[:-1]:
            x = layer(x)
        parts["pen"].append(x)
        parts["logits"].append(model.head(ckpt.model)(x))
    out = {k: torch.cat(v).double().numpy() for k, v in parts.items()}
    early = features.early_features(ckpt, images, SETTINGS)  # the rule's own: z-pool2 as the drift step computes it
    assert early is not None and early.shape == out["z-pool2"].shape
    out["z-pool2"] = early
    return out


def _unit(x: Array) -> Array:
    return np.asarray(x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12), dtype=np.float64)


def knn(ref: Array, query: Array) -> tuple[Array, Array]:
    """Cosine distance to the nearest reference row: (reference, leave-one-out; queries)."""
    r, q = _unit(ref), _unit(query)
    d_ref = 1 - r @ r.T
    np.fill_diagonal(d_ref, np.inf)
    return d_ref.min(axis=1), (1 - q @ r.T).min(axis=1)


def _mahalanobis(ref: Array, labels: NDArray[np.int64], query: Array) -> Array:
    classes = np.unique(labels)
    means = np.stack([ref[labels == c].mean(axis=0) for c in classes])
    precision = LedoitWolf().fit(ref - means[np.searchsorted(classes, labels)]).precision_
    return np.asarray(np.min([(((query - m) @ precision) * (query - m)).sum(axis=1) for m in means], axis=0))


def mahalanobis(ref: Array, labels: NDArray[np.int64], query: Array, folds: int = 10) -> tuple[Array, Array]:
    """Class-conditional Mahalanobis distance (shared Ledoit-Wolf covariance): (reference, cross-fitted;
    queries, fitted on the whole reference)."""
    own = np.empty(len(ref))
    order = np.random.default_rng(0).permutation(len(ref))
    for f in range(folds):
        held = order[f::folds]
        fit = np.setdiff1d(order, held)
        own[held] = _mahalanobis(ref[fit], labels[fit], ref[held])
    return own, _mahalanobis(ref, labels, query)


def energy(logits: Array) -> Array:
    top = logits.max(axis=1)
    return np.asarray(-(top + np.log(np.exp(logits - top[:, None]).sum(axis=1))), dtype=np.float64)


def candidates(ref: dict[str, Array], labels: NDArray[np.int64], query: dict[str, Array]
               ) -> dict[str, tuple[Array, Array]]:
    """Each candidate's (reference scores, query scores); larger = more novel."""
    out: dict[str, tuple[Array, Array]] = {}
    for layer in [*GAP, *SPATIAL, *ZSPATIAL, "pen"]:
        out[f"knn-{layer}"] = knn(ref[layer], query[layer])
    for layer in [*GAP, "pen"]:
        out[f"maha-{layer}"] = mahalanobis(ref[layer], labels, query[layer])
        out[f"mahaU-{layer}"] = mahalanobis(_unit(ref[layer]), labels, _unit(query[layer]))
    out["energy"] = (energy(ref["logits"]), energy(query["logits"]))
    out["norm-pen"] = (np.linalg.norm(ref["pen"], axis=1), np.linalg.norm(query["pen"], axis=1))
    return out


def _tensor(images: NDArray[np.uint8]) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()


def test_sets(n_iid: int, n_bees: int) -> dict[str, torch.Tensor]:
    """Fresh production renders (seeds drift_quality.py uses) and shifts of them."""
    base = sampledata.render(sampledata.production_counts(n_iid), half="production", seed=POOL_SEED)
    bees = sampledata.render({sampledata.NEW_CLASS: n_bees}, half="production", seed=POOL_SEED + 1)
    sets = {"iid": _tensor(base.images), "bees": _tensor(bees.images)}
    nearest = float(drift_shifts.RESIZE_FILTERS.index("nearest"))
    shifts = (("brighter", 1.04, "brighter+4%"), ("jpeg", 30.0, "jpeg q30"), ("noise", 0.02, "noise .02"),
              ("resize", nearest, "resize nn"), ("darker", 0.8, "darker-20%"), ("noise", 0.08, "noise .08"),
              ("darker", 0.7, "darker-30%"),
              ("rotation", 30.0, "rotate 30"), ("contrast", 0.95, "contrast-5%"), ("contrast", 1.05, "contrast+5%"),
              ("blur", 2.0, "blur 2px"), ("rotation", 10.0, "rotate 10"), ("darker", 0.96, "darker-4%"))
    for i, (family, value, label) in enumerate(shifts):
        shift = drift_shifts.Shift(family, value, label)
        sets[label] = _tensor(shift.apply(base.images, np.random.default_rng([POOL_SEED, i])))
    lines = drift_shifts.line_drawings(sampledata.production_counts(max(n_bees // 2, 1)), seed=POOL_SEED + 2)
    sets["lines"] = _tensor(lines.images)
    return sets


def held_out(p: params.Params, workdir: Path) -> tuple[torch.Tensor, NDArray[np.int64]]:
    """The held-out images the train stage records (validation split, then the reference split)."""
    prepared = workdir / "prepared"
    prepare.run(p, prepared)
    parts = [data.load_images(data.list_images(str(prepared / part), labelled=True), p.train.image_size)
             for part in ("val", "reference") if (prepared / part).exists()]
    labels = [x.labels for x in parts]
    if any(y is None for y in labels):
        raise SystemExit(f"--source: {p.data.source} has no class subfolders")
    y = torch.cat([y for y in labels if y is not None]).numpy().astype(np.int64)
    return torch.cat([x.images for x in parts]), y


def table(scores: dict[str, tuple[Array, Array]], sizes: dict[str, int]) -> str:
    bounds = np.cumsum([0, *sizes.values()])
    lines = ["| score | " + " | ".join(sizes) + " |", "|---" * (len(sizes) + 1) + "|"]
    for name, (own, query) in scores.items():
        t95, t99 = np.quantile(own, 0.95), np.quantile(own, 0.99)
        cells = [query[bounds[i]:bounds[i + 1]] for i in range(len(sizes))]
        lines.append(f"| {name} | " + " | ".join(f"{(c > t95).mean():.2f} \\| {(c > t99).mean():.2f}" for c in cells)
                     + " |")
    return "\n".join(lines)


def window_rates(ref: dict[str, Array], query: dict[str, Array], sets: dict[str, int], mix: str | None,
                 reps: int) -> str:
    """The novelty test's detection rate per window kind, the distance column on each layer."""
    bounds = dict(zip(sets, np.cumsum([0, *sets.values()]).tolist(), strict=False))
    rows: list[tuple[str, int, dict[str, float]]] = [("iid", 150, {}), ("iid", 500, {})]
    harmless = ("brighter+4%", "jpeg q30", "noise .02", "resize nn", "darker-20%", "darker-4%", "contrast-5%",
                "contrast+5%", "blur 2px", "rotate 10")
    rows += [(name, 500, {}) for name in (*harmless, "noise .08")]
    rows += [("iid", n, {"bees": share}) for share, n in ((0.3, 150), (0.1, 500), (0.1, 200))]
    if mix is not None:
        rows.append(("mix", 150, {}))
    heads = [f"{'bees {:.0%}'.format(extra['bees']) if extra else name} n={n}" for name, n, extra in rows]
    lines = ["| distance on | " + " | ".join(heads) + " |", "|---" * (len(rows) + 1) + "|"]
    variants: list[tuple[str, tuple[str, ...]]] = [(f"knn-{layer}", (layer,))
                                                   for layer in ("pen", "s-pool2", "s-conv3", *ZSPATIAL)]
    variants.append(("**the rule: knn-pen, norm, knn-z-pool2**", ("pen", "z-pool2")))
    for label, layers in variants:
        # columns as impact.novelty_scores orders them: distance, norm, [early distance]
        own_d = [knn(ref[layer], ref[layer][:1])[0] for layer in layers]
        cur_d = [knn(ref[layer], query[layer])[1] for layer in layers]
        own = np.stack([own_d[0], np.linalg.norm(ref["pen"], axis=1), *own_d[1:]], axis=1)
        cur = np.stack([cur_d[0], np.linalg.norm(query["pen"], axis=1), *cur_d[1:]], axis=1)
        cells = []
        for i, (name, n, extra) in enumerate(rows):
            rng = np.random.default_rng([i, reps])
            found = 0
            for _ in range(reps):
                k = round(extra.get("bees", 0.0) * n)
                picks = [bounds[name] + rng.choice(sets[name], n - k, replace=False)]
                if k:
                    picks.append(bounds["bees"] + rng.choice(sets["bees"], k, replace=False))
                found += impact.novelty_test(own, cur[np.concatenate(picks)])[0].detected
            cells.append(f"{found / reps:.2f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--model", help="serving model file (default: train the sample project's model)")
    ap.add_argument("--source", default="", help="the image folder the model was trained on ('' = the sample set)")
    ap.add_argument("--iid", type=int, default=1500, help="fresh production renders (and each shift of them)")
    ap.add_argument("--bees", type=int, default=800, help="renders of the new class")
    ap.add_argument("--mix", help="a production image folder to draw windows of 150 from (e.g. the demo's new-class)")
    ap.add_argument("--reps", type=int, default=200, help="windows per row of the novelty-test table")
    args = ap.parse_args(argv)
    for name, value, least in (("--iid", args.iid, 500), ("--bees", args.bees, 50), ("--reps", args.reps, 1)):
        if value < least:
            raise SystemExit(f"{name}: {value} is not allowed, it must be at least {least} (windows of 500, 10% bees)")
    started = time.perf_counter()
    meta = drift_quality.machine()
    p = params.load(ROOT / "params.yaml")
    p = dataclasses.replace(p, data=dataclasses.replace(p.data, source=args.source))
    tmp = Path(tempfile.mkdtemp(prefix="novelty-candidates-"))
    try:
        ckpt = model.load(args.model or str(drift_quality.train_sample_model(tmp, None)))
        images, labels = held_out(p, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ref = layer_features(ckpt, images)
    print(f"# novelty_candidates  {meta['date']}  commit {meta['commit']}  {meta['host']}  {meta['cpus']} CPUs  "
          f"load {meta['load'][0]:.2f}  model {args.model or 'sample project, trained now'}", flush=True)
    if ckpt.heldout is not None and len(ckpt.heldout) == len(images):
        diff = float(np.abs(ref["pen"] - ckpt.heldout.embeddings.double().numpy()).max())
        print(f"# reference: {len(images)} held-out images rebuilt; max |difference| from the model file's stored "
              f"embeddings {diff:.3g} (float16 storage)")
    else:
        print(f"# reference: {len(images)} held-out images rebuilt; the model file stores "
              f"{0 if ckpt.heldout is None else len(ckpt.heldout)} (not the same split: check --source)")
    sets = test_sets(args.iid, args.bees)
    if args.mix:
        sets["mix"] = data.load_images(data.list_images(args.mix), ckpt.image_size).images
        if len(sets["mix"]) < 150:
            raise SystemExit(f"--mix: {args.mix} has {len(sets['mix'])} images; windows of 150 need at least 150")
    feats = [layer_features(ckpt, x) for x in sets.values()]
    query = {k: np.concatenate([f[k] for f in feats]) for k in ref}
    print(f"# share of each set beyond the reference's 95th | 99th percentile of the score "
          f"({time.perf_counter() - started:.0f} s to features)")
    sizes = {k: len(v) for k, v in sets.items()}
    print(table(candidates(ref, labels, query), {k: v for k, v in sizes.items() if k != "mix"}))
    print(f"# the novelty test (impact.novelty_test, alpha {impact.ALPHA}) with the distance on each layer: "
          f"share of {args.reps} windows detected")
    print(window_rates(ref, query, sizes, args.mix, args.reps))
    print(f"# {time.perf_counter() - started:.0f} s; load at the end {drift_quality.machine()['load'][0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
