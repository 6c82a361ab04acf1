"""Seeded Pathfinder generator (paddles, continuity-weighted contours, distractors, markers) in the release layout.

A simplified re-implementation of the published algorithm (Linsley et al. 2018; ``data-formats.md`` section 2.2),
with numpy and Pillow only:

1. ``label ~ Bernoulli(0.5)``; ``paddle_margin`` is drawn from the preset's list.
2. **Two target snakes** of ``contour_length`` paddles (short dashes ``paddle_length`` px long and
   ``paddle_thickness`` px thick, separated by gaps of ``paddle_margin`` px): the first seed is uniform in the central
   region (at least ``2 * seed_distance`` from the border where the image allows), the second on a circle of radius
   ``seed_distance`` around it.
3. Each next paddle turns by an angle drawn among candidates in [-90, 90] degrees with weight
   ``max(cos(min(|turn| * continuity, pi/2)), 0)^2 * (1 - occupied(head))``: larger ``continuity``, smoother paths.
   A paddle whose footprint, dilated by the margin, touches another paddle (or leaves the image) is redrawn up to
   ``max_paddle_retrial`` times; if a target snake cannot be completed the image is restarted.
4. **Distractors**: ``num_distractor_snakes`` snakes of ``distractor_length = contour_length // 3`` paddles at random
   free seeds (incomplete snakes allowed).
5. **Markers**: filled circles of ``marker_radius`` at the start of target snake A and at the end of A (label 1,
   connected) or of B (label 0).
6. Paddles and markers are drawn at ``antialias_scale``x with Pillow, downsampled with Lanczos, min-max scaled to
   uint8 and saved as 8-bit grayscale PNGs, with one metadata row per image in the release's text format
   (``imgs/<k> sample_<i>.png <i> <label> <continuity> <contour_length> <distractor_length> <paddle_length>
   <paddle_thickness> <paddle_margin> 1``).

:func:`write_pathfinder_release` writes ``<out>/pathfinder<res>/curv_contour_length_<cl>/{metadata/<k>.npy,
imgs/<k>/sample_<i>.png}`` (``k`` = batch of ``per_batch`` images, ``i`` restarting in each batch), which the reader
:mod:`ptdssm.data.lra.pathfinder` reads. Presets follow the LRA builders for 32/64/128/256 px; other resolutions
scale the 32 px preset. Simplifications: candidate turns are a fixed fan of angles (not the pixels of a circle),
occupancy uses distance-to-segment footprints (no OpenCV dilation), one paddle contrast.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["PathfinderParams", "bright_fraction", "generate_pathfinder_image", "preset", "write_pathfinder_release"]


@dataclass(frozen=True)
class PathfinderParams:
    """Generation parameters (see the module docstring); :func:`preset` gives the LRA ones per resolution."""

    resolution: int = 32
    contour_length: int = 14
    paddle_length: float = 2.0
    paddle_thickness: float = 0.5
    paddle_margin: tuple[float, ...] = (1.0,)
    padding: int = 1
    marker_radius: float = 1.5
    seed_distance: float = 7.0
    continuity: float = 1.0
    antialias_scale: int = 2
    distractor_total: float = 20.0  # num_distractor_snakes = distractor_total // distractor_length
    paddle_contrast: float = 0.75
    max_paddle_retrial: int = 2
    n_turns: int = 19
    max_image_retrial: int = 200
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def distractor_length(self) -> int:
        """Paddles per distractor snake (``contour_length // 3``, at least 1)."""
        return max(1, self.contour_length // 3)

    @property
    def num_distractor_snakes(self) -> int:
        """Number of distractor snakes."""
        return int(self.distractor_total // self.distractor_length)


def preset(resolution: int = 32, contour_length: int = 14) -> PathfinderParams:
    """LRA's parameters for ``pathfinder<resolution>/curv_contour_length_<contour_length>``.

    32, 64, 128 and 256 px follow the LRA builder docstrings (Path-X uses ``35 * 2 / distractor_length`` distractor
    snakes, as released); paddle lengths above 32 px are not documented and are scaled from the 32 px preset.
    Other resolutions scale the 32 px preset linearly.
    """
    if resolution < 16:
        raise ValueError(f"Pathfinder resolution must be >= 16 px, got {resolution}")
    base = PathfinderParams(resolution=resolution, contour_length=contour_length)
    table = {
        32: {},
        64: {"paddle_length": 3.0, "paddle_thickness": 1.0, "paddle_margin": (1.0,), "seed_distance": 12.0,
             "marker_radius": 2.5, "continuity": 1.8, "distractor_total": 22.0},
        128: {"paddle_length": 5.0, "paddle_thickness": 1.5, "paddle_margin": (2.0, 3.0), "seed_distance": 20.0,
              "marker_radius": 3.0, "continuity": 1.8, "distractor_total": 70.0},
        256: {"paddle_length": 10.0, "paddle_thickness": 2.0, "paddle_margin": (3.0,), "seed_distance": 40.0,
              "marker_radius": 5.0, "continuity": 1.8, "distractor_total": 30.0},
    }
    if resolution in table:
        return replace(base, **table[resolution])
    s = resolution / 32.0
    return replace(base, paddle_length=2.0 * s, paddle_thickness=max(0.5, 0.5 * s), paddle_margin=(max(1.0, s),),
                   marker_radius=1.5 * s, seed_distance=7.0 * s, continuity=1.0 if s < 2 else 1.8,
                   distractor_total=20.0 * max(1.0, s / 2))


class _Canvas:
    """Occupancy bookkeeping at the output resolution."""

    def __init__(self, res: int) -> None:
        self.res = res
        yy, xx = np.mgrid[0:res, 0:res]
        self.cy, self.cx = yy + 0.5, xx + 0.5
        self.blocked = np.zeros((res, res), dtype=bool)

    def zone(self, p: np.ndarray, q: np.ndarray, radius: float) -> tuple[slice, slice, np.ndarray]:
        """Pixels within ``radius`` of segment ``p-q`` (a window and its boolean mask)."""
        r = radius + 1
        x0, x1 = int(max(0, math.floor(min(p[0], q[0]) - r))), int(min(self.res, math.ceil(max(p[0], q[0]) + r)))
        y0, y1 = int(max(0, math.floor(min(p[1], q[1]) - r))), int(min(self.res, math.ceil(max(p[1], q[1]) + r)))
        ys, xs = slice(y0, y1), slice(x0, x1)
        px, py = self.cx[ys, xs], self.cy[ys, xs]
        d = q - p
        dd = float(d @ d) or 1e-12
        t = np.clip(((px - p[0]) * d[0] + (py - p[1]) * d[1]) / dd, 0.0, 1.0)
        dist2 = (px - p[0] - t * d[0]) ** 2 + (py - p[1] - t * d[1]) ** 2
        return ys, xs, dist2 <= radius * radius


def _inside(pt: np.ndarray, res: int, pad: float) -> bool:
    return pad <= pt[0] <= res - pad and pad <= pt[1] <= res - pad


def _grow(rng: np.random.Generator, cv: _Canvas, start: np.ndarray, angle: float, n: int, p: PathfinderParams,
          margin: float, *, complete: bool) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """Grow one snake of ``n`` paddles; ``None`` if ``complete`` and it could not be finished (canvas unchanged)."""
    fp_r = max(p.paddle_thickness / 2.0, 0.5)
    paddles: list[tuple[np.ndarray, np.ndarray]] = []
    pending: list[tuple[slice, slice, np.ndarray]] = []  # zones of this snake's last paddle (not yet blocking)
    own: list[tuple[slice, slice, np.ndarray]] = []
    turns = np.linspace(-math.pi / 2, math.pi / 2, p.n_turns)
    w_turn = np.maximum(np.cos(np.minimum(np.abs(turns) * p.continuity, math.pi / 2)), 0.0) ** 2
    pos = start.astype(float)
    for k in range(n):
        placed = False
        for _ in range(p.max_paddle_retrial + 1):
            if k == 0:
                th = angle
            else:
                heads = [pos + (margin + p.paddle_length) * np.array([math.cos(angle + t), math.sin(angle + t)])
                         for t in turns]
                free = np.array([_inside(h, cv.res, p.padding) and not cv.blocked[
                    min(cv.res - 1, int(h[1])), min(cv.res - 1, int(h[0]))] for h in heads], dtype=float)
                w = w_turn * free
                if w.sum() <= 0:
                    break
                th = angle + float(rng.choice(turns, p=w / w.sum()))
            u = np.array([math.cos(th), math.sin(th)])
            a = pos + (margin * u if k > 0 else 0.0)
            b = a + p.paddle_length * u
            if not (_inside(a, cv.res, p.padding) and _inside(b, cv.res, p.padding)):
                continue
            ys, xs, fp = cv.zone(a, b, fp_r)
            if (cv.blocked[ys, xs] & fp).any():
                continue
            for zys, zxs, zm in pending:  # the previous paddle now blocks
                cv.blocked[zys, zxs] |= zm
                own.append((zys, zxs, zm))
            pending = [cv.zone(a, b, fp_r + margin)]
            paddles.append((a, b))
            pos, angle, placed = b, th, True
            break
        if not placed:
            break
    if complete and len(paddles) < n:
        for zys, zxs, zm in own:  # undo (zones never overlap other snakes' blocked pixels by construction)
            cv.blocked[zys, zxs] &= ~zm
        return None
    for zys, zxs, zm in pending:
        cv.blocked[zys, zxs] |= zm
    return paddles


def _free_seed(rng: np.random.Generator, cv: _Canvas, border: float) -> np.ndarray | None:
    lo, hi = border, cv.res - border
    if hi <= lo:
        lo, hi = cv.res / 2 - 1, cv.res / 2 + 1
    for _ in range(50):
        pt = rng.uniform(lo, hi, size=2)
        if not cv.blocked[int(pt[1]), int(pt[0])]:
            return pt
    return None


def generate_pathfinder_image(rng: np.random.Generator, params: PathfinderParams | None = None,
                              label: int | None = None) -> tuple[np.ndarray, int, dict[str, Any]]:
    """One image: ``(uint8 (res, res), label, info)`` with ``info`` holding the margin and the snakes' paddles."""
    p = params or preset()
    res = p.resolution
    if label is None:
        label = int(rng.integers(0, 2))
    for _ in range(p.max_image_retrial):
        margin = float(rng.choice(np.asarray(p.paddle_margin, dtype=float)))
        cv = _Canvas(res)
        s1 = _free_seed(rng, cv, min(2 * p.seed_distance, res / 2 - 2))
        if s1 is None:
            continue
        phi = rng.uniform(-math.pi, math.pi)
        s2 = s1 + p.seed_distance * np.array([math.cos(phi), math.sin(phi)])
        if not _inside(s2, res, p.padding + 1):
            continue
        a1, a2 = rng.uniform(-math.pi, math.pi, size=2)
        snake_a = _grow(rng, cv, s1, float(a1), p.contour_length, p, margin, complete=True)
        if snake_a is None:
            continue
        snake_b = _grow(rng, cv, s2, float(a2), p.contour_length, p, margin, complete=True)
        if snake_b is None:
            continue
        distractors = []
        for _ in range(p.num_distractor_snakes):
            if cv.blocked.mean() > 0.99:
                break
            seed = _free_seed(rng, cv, p.padding + 1)
            if seed is None:
                break
            d = _grow(rng, cv, seed, float(rng.uniform(-math.pi, math.pi)), p.distractor_length, p, margin,
                      complete=False)
            if d:
                distractors.append(d)
        ends = (snake_a[0][0], snake_a[-1][1] if label == 1 else snake_b[-1][1])
        img = _render(p, [snake_a, snake_b, *distractors], ends)
        return img, label, {"margin": margin, "snakes": [snake_a, snake_b], "n_distractors": len(distractors),
                            "markers": [e.tolist() for e in ends]}
    raise RuntimeError(f"Pathfinder generator: could not place two snakes of {p.contour_length} paddles in a "
                       f"{res}x{res} image after {p.max_image_retrial} tries (contour too long for the image?)")


def _render(p: PathfinderParams, snakes: Sequence[Sequence[tuple[np.ndarray, np.ndarray]]],
            markers: Sequence[np.ndarray]) -> np.ndarray:
    s = p.antialias_scale
    size = p.resolution * s
    im = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(im)
    width = max(1, int(round(p.paddle_thickness * s)))
    level = int(round(255 * p.paddle_contrast))
    for snake in snakes:
        for a, b in snake:
            draw.line([tuple(a * s), tuple(b * s)], fill=level, width=width)
    r = p.marker_radius * s
    for m in markers:
        c = m * s
        draw.ellipse([c[0] - r, c[1] - r, c[0] + r, c[1] + r], fill=255)
    small = np.asarray(im.resize((p.resolution, p.resolution), Image.Resampling.LANCZOS), dtype=np.float64)
    lo, hi = small.min(), small.max()
    return np.zeros_like(small, np.uint8) if hi <= lo else np.round((small - lo) / (hi - lo) * 255).astype(np.uint8)


def bright_fraction(img: np.ndarray, threshold: int = 60) -> float:
    """Fraction of pixels brighter than ``threshold`` (calibration against real images: ~5.3% for Path-X)."""
    return float((np.asarray(img) > threshold).mean())


def write_pathfinder_release(out: str | Path, n: int, *, resolution: int = 32, contour_length: int = 14,
                             seed: int = 0, per_batch: int = 1000, params: PathfinderParams | None = None,
                             metadata_format: str = "text") -> dict[str, Any]:
    """Generate ``n`` images into ``<out>/pathfinder<res>/curv_contour_length_<cl>/`` (the release layout).

    Args:
        out: output root.
        n: number of images (labels balanced in expectation).
        resolution, contour_length: select the preset (ignored when ``params`` is given).
        seed: seed of the ``numpy.random.Generator``.
        per_batch: images per ``imgs/<k>`` folder and ``metadata/<k>.npy`` file.
        params: explicit :class:`PathfinderParams`.
        metadata_format: ``"text"`` (the release) or ``"npy"`` (the original generator's ``np.save`` of strings).

    Returns:
        ``{"folder", "n", "label_freq", "bright_fraction"}``.
    """
    if metadata_format not in ("text", "npy"):
        raise ValueError(f"metadata_format must be 'text' or 'npy', got {metadata_format!r}")
    p = params or preset(resolution, contour_length)
    folder = Path(out) / f"pathfinder{p.resolution}" / f"curv_contour_length_{p.contour_length}"
    (folder / "metadata").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    labels: list[int] = []
    bright: list[float] = []
    rows: list[list[str]] = []
    for idx in range(n):
        k, i = divmod(idx, per_batch)
        img, label, info = generate_pathfinder_image(rng, p)
        d = folder / "imgs" / str(k)
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(d / f"sample_{i}.png")
        labels.append(label)
        bright.append(bright_fraction(img))
        rows.append([f"imgs/{k}", f"sample_{i}.png", str(i), str(label), str(float(p.continuity)),
                     str(p.contour_length), str(p.distractor_length), _num(p.paddle_length),
                     _num(p.paddle_thickness), _num(info["margin"]), "1"])
        if i == per_batch - 1 or idx == n - 1:
            _write_meta(folder / "metadata" / f"{k}.npy", rows, metadata_format)
            rows = []
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=2) if labels else np.zeros(2)
    return {"folder": str(folder), "n": n, "label_freq": {str(c): float(counts[c] / max(n, 1)) for c in (0, 1)},
            "bright_fraction": float(np.mean(bright)) if bright else 0.0, "params": _jsonable(asdict(p))}


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def _write_meta(path: Path, rows: list[list[str]], fmt: str) -> None:
    if fmt == "npy":
        np.save(path, np.asarray(rows, dtype=str), allow_pickle=False)
        if not path.exists() and path.with_suffix(".npy.npy").exists():  # np.save appends .npy only when missing
            path.with_suffix(".npy.npy").rename(path)
    else:
        path.write_text("".join(" ".join(r) + "\n" for r in rows), encoding="utf-8")
