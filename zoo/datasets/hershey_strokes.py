"""Online handwriting: pen trajectories synthesised from the Hershey single-stroke fonts
by simulated writers (no real pen data ships offline); the test split is CMUdict's
held-out words in two held-out faces (600 samples; training: 16,000 in nine other faces).

No real pen data ships offline (../shared/DATA.md), so words are written with the Hershey
vector fonts (``pip install 'lstm-zoo[handwriting]'``, MIT) by a simulated writer: slant,
anisotropic scale, rotation, pen speed (sampling step along each stroke), tremor (jitter)
and stroke-order noise vary per sample (:class:`WriterStyle`). A sample is the sequence a
tablet would record: per point ``(dx, dy, pen_up)``, the move from the previous point in
units of the font's body height and 1 where the pen was lifted before the point.
Training writers also redraw the font's strokes their own way (:class:`StrokeVariation`:
pen lifts at cusps and inside long strokes, strokes drawn backwards, shading copies beside
strokes, a letter's strokes in another order, wider or tighter letter spacing); 30 % of
them draw the font as it is. The held-out faces' test split is written without it.

Faces: several Hershey names draw identical lowercase glyphs (measured: rowmans = futural,
rowmand = futuram, timesrb = rowmant, cursive = scripts, gothgbt = gothiceng, gothgrt =
gothicger, gothitt = gothicita), so splits are by *distinct* face: :data:`TEST_FACES` are
never seen in training. The three blackletter faces joined the training faces after the
first recogniser, trained without them, read the held-out script face badly (CER 31.5 %
on scriptc, 5.3 % on timesi): more styles to learn from, the test faces unchanged.
Words come from CMUdict's own train/test split (``zoo.datasets.cmudict``), so test words
are unseen as well.
License: Hershey fonts (public domain), packaged in Hershey-Fonts (MIT).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np

from zoo.constants import HANDWRITING_ALPHABET as ALPHABET
from zoo.datasets.catalog import register_dataset
from zoo.errors import DataError

LICENSE = "Hershey vector fonts (public domain) via the Hershey-Fonts package (MIT); words "\
          "from CMUdict (BSD-style); trajectories synthesised"
TRAIN_FACES = ("futural", "futuram", "rowmant", "scripts", "timesr", "timesib", "gothiceng",
               "gothicger", "gothicita")
TEST_FACES = ("scriptc", "timesi")
BODY = 21.0  # font units from descender to ascender of the Hershey Roman faces


@dataclass(frozen=True)
class WriterStyle:
    """How one simulated writer deviates from the font."""

    slant: float = 0.0  # shear of x by y
    scale_x: float = 1.0
    scale_y: float = 1.0
    rotation: float = 0.0  # radians
    step: float = 1.5  # font units between recorded points (pen speed)
    jitter: float = 0.0  # sd of tremor noise, font units
    swap: float = 0.0  # probability of drawing two neighbouring strokes in swapped order

    @classmethod
    def sample(cls, rng: np.random.Generator) -> WriterStyle:
        return cls(slant=float(rng.uniform(-0.35, 0.35)),
                   scale_x=float(rng.uniform(0.8, 1.25)), scale_y=float(rng.uniform(0.8, 1.25)),
                   rotation=float(rng.uniform(-0.08, 0.08)), step=float(rng.uniform(1.0, 2.5)),
                   jitter=float(rng.uniform(0.0, 0.35)), swap=float(rng.uniform(0.0, 0.15)))


@dataclass(frozen=True)
class StrokeVariation:
    """How one simulated writer draws the font's strokes in other ways: the same shapes with
    other pen lifts, directions, shading and spacing. Training writers only: the held-out
    faces' test split is written without it (``docs/handwriting.md``, "What limited
    scriptc": the held-out complex script face draws script shapes with 3.5 pen lifts per
    letter and doubled strokes, a combination no training face has). Rates are per writer;
    ``StrokeVariation()`` draws the font as it is (the same trajectory as no variation;
    other all-zero rates draw from ``rng`` all the same)."""

    cusp_lift: float = 0.0  # probability of a pen lift at each cusp
    cusp_angle: float = 100.0  # degrees a stroke turns by at a cusp
    mid_lift: float = 0.0  # probability of a pen lift at a random point of each long stroke
    reverse: float = 0.0  # probability of drawing each stroke from its other end
    shade: float = 0.0  # probability of a parallel copy after each long stroke
    shade_offset: float = 1.0  # font units between a stroke and its shading copy
    shuffle: float = 0.0  # probability of drawing a letter's strokes in a random order
    gap: float = 0.0  # extra space after each letter, font units (negative: tighter)
    gap_jitter: float = 0.0  # sd of the per-letter change of that space, font units

    # Share of training writers drawing the font as it is: the faces' own drawings stay
    # the commonest single style.
    PLAIN = 0.3

    @classmethod
    def sample(cls, rng: np.random.Generator) -> StrokeVariation:
        if rng.random() < cls.PLAIN:
            return cls()
        # cusps from 45 degrees: the training script face turns at 1.4 points per letter
        # by 60 degrees or more, at 0.5 by 100 (scriptc lifts the pen 3.5 times per letter)
        return cls(cusp_lift=float(rng.uniform(0.0, 1.0)),
                   cusp_angle=float(rng.uniform(45.0, 110.0)),
                   mid_lift=float(rng.uniform(0.0, 0.4)),
                   reverse=float(rng.uniform(0.0, 0.3)), shade=float(rng.uniform(0.0, 0.9)),
                   shade_offset=float(rng.uniform(0.6, 1.6)) * float(rng.choice([-1.0, 1.0])),
                   shuffle=float(rng.uniform(0.0, 0.3)),
                   gap=float(rng.uniform(-0.05, 0.3)) * BODY,
                   gap_jitter=float(rng.uniform(0.0, 0.06)) * BODY)

    def apply(self, letters: list[list[np.ndarray]],
              rng: np.random.Generator) -> list[np.ndarray]:
        """The strokes of ``letters`` (the font's strokes grouped by letter, font units)
        as this writer draws them, flat in drawing order."""
        out: list[np.ndarray] = []
        shift = 0.0
        for k, letter in enumerate(letters):
            if k:
                shift += self.gap + rng.normal(0.0, self.gap_jitter) if self.gap_jitter \
                    else self.gap
            order = list(range(len(letter)))
            if len(order) > 1 and rng.random() < self.shuffle:
                rng.shuffle(order)
            for i in order:
                stroke = letter[i] + [shift, 0.0]
                if self.reverse and rng.random() < self.reverse:
                    stroke = stroke[::-1]
                shaded = self.shade and length(stroke) >= 4.0 and rng.random() < self.shade
                out += split_stroke(stroke, self._cuts(stroke, rng))
                if shaded:
                    out.append(shading(stroke, self.shade_offset))
        return out

    def _cuts(self, stroke: np.ndarray, rng: np.random.Generator) -> list[int]:
        cuts = [i for i in cusps(stroke, self.cusp_angle) if rng.random() < self.cusp_lift] \
            if self.cusp_lift else []
        if self.mid_lift and len(stroke) > 2 and length(stroke) >= 8.0 \
                and rng.random() < self.mid_lift:
            cuts.append(int(rng.integers(1, len(stroke) - 1)))
        return sorted(set(cuts))


def length(stroke: np.ndarray) -> float:
    """The stroke's length along its points, font units."""
    return float(np.linalg.norm(np.diff(stroke, axis=0), axis=1).sum()) if len(stroke) > 1 \
        else 0.0


def cusps(stroke: np.ndarray, angle: float = 100.0) -> list[int]:
    """Indices of the stroke's points where it turns by more than ``angle`` degrees (where
    a print face would lift the pen); repeated points are skipped over."""
    if len(stroke) < 3:
        return []
    moves = np.diff(stroke, axis=0)
    moving = np.flatnonzero(np.linalg.norm(moves, axis=1) > 0)
    if len(moving) < 2:
        return []
    v = moves[moving]
    cos = np.sum(v[:-1] * v[1:], axis=1) / (
        np.linalg.norm(v[:-1], axis=1) * np.linalg.norm(v[1:], axis=1))
    return [int(moving[j + 1]) for j in np.flatnonzero(cos < math.cos(math.radians(angle)))]


def split_stroke(stroke: np.ndarray, cuts) -> list[np.ndarray]:
    """The stroke cut (the pen lifted and put down again) at each point index of ``cuts``;
    the point at a cut ends one piece and starts the next. Cuts at either end, outside
    the stroke or repeated are ignored: no piece is a single point."""
    bounds = [0, *sorted({int(c) for c in cuts if 0 < c < len(stroke) - 1}), len(stroke) - 1]
    if len(bounds) == 2:
        return [stroke]
    return [stroke[a : b + 1] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def shading(stroke: np.ndarray, offset: float) -> np.ndarray:
    """A copy of the stroke shifted ``offset`` font units along its normal, as complex
    faces thicken their lines."""
    tangent = np.gradient(stroke, axis=0)
    norm = np.linalg.norm(tangent, axis=1, keepdims=True)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1) / np.maximum(norm, 1e-9)
    return stroke + offset * normal


@cache
def _font(face: str):
    try:
        from HersheyFonts import HersheyFonts
    except ImportError:
        from zoo.errors import MissingExtraError

        raise MissingExtraError("the Hershey fonts ship in the 'Hershey-Fonts' package, which "
                                "is not installed; install it with: pip install "
                                "'lstm-zoo[handwriting]'") from None
    if face not in TRAIN_FACES + TEST_FACES:
        raise DataError(f"unknown face {face!r}; expected one of {TRAIN_FACES + TEST_FACES}")
    font = HersheyFonts()
    font.load_default_font(face)
    return font


def glyph_strokes(text: str, face: str) -> list[np.ndarray]:
    """The font's strokes for ``text``: a list of (points, 2) arrays, y up."""
    bad = sorted(set(text) - set(ALPHABET))
    if bad or not text:
        raise DataError(f"text {text!r} must be non-empty and use only {ALPHABET!r}; "
                        f"got {bad}")
    return [np.asarray(s, np.float64) * [1.0, -1.0]
            for s in _font(face).strokes_for_text(text)]


def letter_strokes(text: str, face: str) -> list[list[np.ndarray]]:
    """:func:`glyph_strokes` grouped by letter of ``text``."""
    strokes = glyph_strokes(text, face)
    bounds = np.cumsum([0, *(_stroke_count(ch, face) for ch in text)])
    if bounds[-1] != len(strokes):
        raise DataError(f"face {face!r} lays out {text!r} in {len(strokes)} strokes, its "
                        f"letters in {bounds[-1]}")
    return [strokes[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


@cache
def _stroke_count(letter: str, face: str) -> int:
    return len(glyph_strokes(letter, face))


def write(text: str, face: str, style: WriterStyle, rng: np.random.Generator,
          variation: StrokeVariation | None = None) -> np.ndarray:
    """The pen trajectory of ``text`` in ``face`` by ``style``: (T, 3) float32 rows of
    ``(dx, dy, pen_up)``; the first row is the pen going down at the origin. With a
    ``variation``, the font's strokes are first redrawn as that writer draws them."""
    if variation is None or variation == StrokeVariation():
        return write_strokes(glyph_strokes(text, face), style, rng)
    return write_strokes(variation.apply(letter_strokes(text, face), rng), style, rng)


def write_strokes(strokes: list[np.ndarray], style: WriterStyle,
                  rng: np.random.Generator) -> np.ndarray:
    """:func:`write` from given font strokes (y up, font units): the writer simulation,
    for strokes changed before they are written (``benchmarks/handwriting_errors.py``)."""
    order = list(range(len(strokes)))
    for i in range(len(order) - 1):
        if rng.random() < style.swap:
            order[i], order[i + 1] = order[i + 1], order[i]
    c, s = math.cos(style.rotation), math.sin(style.rotation)
    transform = np.array([[c, -s], [s, c]]) @ np.array(
        [[style.scale_x, style.slant * style.scale_y], [0.0, style.scale_y]])
    points, pen = [], []
    for k in order:
        stroke = _resample(strokes[k] @ transform.T, style.step)
        stroke = stroke + rng.normal(0.0, style.jitter, stroke.shape)
        points.append(stroke)
        pen += [1.0] + [0.0] * (len(stroke) - 1)
    xy = np.concatenate(points)
    deltas = np.diff(xy, axis=0, prepend=xy[:1]) / BODY
    return np.concatenate([deltas, np.asarray(pen)[:, None]], axis=1).astype(np.float32)


def _resample(stroke: np.ndarray, step: float) -> np.ndarray:
    """Points every ``step`` font units along the stroke (its end points kept)."""
    if len(stroke) < 2:
        return stroke
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(stroke, axis=0), axis=1))])
    if arc[-1] == 0.0:
        return stroke[:1]
    at = np.linspace(0.0, arc[-1], max(2, int(math.ceil(arc[-1] / step)) + 1))
    return np.stack([np.interp(at, arc, stroke[:, d]) for d in range(2)], axis=1)


def from_points(strokes, body_height: float, step: float = 1.5) -> np.ndarray:
    """Rows ``(dx, dy, pen_up)`` from what a device records: ``strokes``, a list of pen-down
    strokes, each a list of absolute ``(x, y)`` positions (y up), and ``body_height``, the
    height from descender to ascender in the same units. Each stroke is resampled every
    ``step`` font units (1.5: the middle of the training writers' pen speeds) so the
    point spacing does not depend on the device's sampling rate.

    Raises:
        DataError: no strokes, an empty stroke, points that are not pairs of finite
            numbers, or a body height that is not a positive number.
    """
    if not isinstance(body_height, (int, float)) or not math.isfinite(body_height) \
            or body_height <= 0:
        raise DataError(f"body_height must be a positive number; got {body_height!r}")
    if not isinstance(strokes, list) or not strokes:
        raise DataError("strokes must be a non-empty list of strokes, each a list of [x, y]")
    scaled = []
    for i, stroke in enumerate(strokes):
        try:
            points = np.asarray(stroke, np.float64)
        except (TypeError, ValueError):
            raise DataError(f"stroke {i} is not a list of [x, y] pairs") from None
        if points.ndim != 2 or points.shape[1] != 2 or len(points) == 0:
            raise DataError(f"stroke {i}: expected a non-empty list of [x, y] pairs, got "
                            f"shape {points.shape}")
        if not np.all(np.isfinite(points)):
            raise DataError(f"stroke {i} has NaN or infinite coordinates")
        scaled.append(_resample(points * (BODY / body_height), step))
    pen = [v for stroke in scaled for v in [1.0] + [0.0] * (len(stroke) - 1)]
    xy = np.concatenate(scaled)
    deltas = np.diff(xy, axis=0, prepend=xy[:1]) / BODY
    return np.concatenate([deltas, np.asarray(pen)[:, None]], axis=1).astype(np.float32)


def absolute(trajectory: np.ndarray) -> np.ndarray:
    """Pen positions (in font units) back from ``(dx, dy, pen_up)`` rows."""
    return np.cumsum(np.asarray(trajectory, np.float64)[:, :2], axis=0) * BODY


@dataclass(frozen=True)
class StrokeData:
    """``x``: one (T_i, 3) trajectory per sample; ``texts``: what each one writes."""

    x: list[np.ndarray]
    texts: list[str]
    faces: list[str]


@cache
def _words(split: str, low: int = 2, high: int = 8) -> tuple[str, ...]:
    from zoo.datasets import cmudict

    words = cmudict.load(split).words
    return tuple(sorted({w for w in words if low <= len(w) <= high and set(w) <= set(ALPHABET)}))


def load(split: str, count: int, seed: int = 0) -> StrokeData:
    """``count`` synthetic samples: ``"train"`` writes CMUdict training words in
    :data:`TRAIN_FACES`, ``"test"`` CMUdict test words in the held-out :data:`TEST_FACES`;
    each sample has its own :class:`WriterStyle`. Deterministic in (split, count, seed)."""
    if split not in ("train", "test"):
        raise DataError(f"Hershey strokes have splits ['train', 'test']; got {split!r}")
    if count < 1:
        raise DataError(f"count must be >= 1; got {count}")
    faces = TRAIN_FACES if split == "train" else TEST_FACES
    words = _words(split)
    rng = np.random.default_rng([seed, split == "test"])
    # the stroke variation draws from its own stream: words, faces and writers stay
    # those drawn before it existed
    varied = np.random.default_rng([seed, 2]) if split == "train" else None
    x, texts, used = [], [], []
    for _ in range(count):
        word, face = words[int(rng.integers(len(words)))], faces[int(rng.integers(len(faces)))]
        strokes = glyph_strokes(word, face) if varied is None else \
            StrokeVariation.sample(varied).apply(letter_strokes(word, face), varied)
        x.append(write_strokes(strokes, WriterStyle.sample(rng), rng))
        texts.append(word)
        used.append(face)
    return StrokeData(x, texts, used)


# The fixed splits the pretrained recogniser uses: (faces' split, samples, seed).
SPLITS = {"train": ("train", 16000, 0), "calibration": ("train", 200, 1),
          "test": ("test", 600, 0), "train_small": ("train", 512, 2)}


@register_dataset("hershey_strokes", license=LICENSE, extra="handwriting")
def load_split(split: str) -> StrokeData:
    """A fixed split of :data:`SPLITS`: ``"train"`` (16,000 trajectories in the training
    faces), ``"calibration"`` (200 more in the training faces, other writers and words
    drawn with another seed), ``"test"`` (600 in the held-out faces, CMUdict test words) or
    ``"train_small"`` (512 in the training faces, for the tiny test model).
    ``"train:K"`` is the K-th fresh draw of the training split (other writers and words;
    ``"train:0"`` is ``"train"``), for recipes that see new writers every epoch.

    Example:
        >>> from zoo.datasets import hershey_strokes
        >>> len(hershey_strokes.load_split("calibration").x)
        200
    """
    name, _, draw = split.partition(":")
    if name not in SPLITS or (draw and (name != "train" or not draw.isdigit())):
        raise DataError(f"Hershey strokes have splits {sorted(SPLITS)} (and 'train:K' for "
                        f"the K-th draw of training writers); got {split!r}")
    if draw and int(draw):  # not cached: a recipe reads each draw once
        faces, count, seed = SPLITS[name]
        return load(faces, count, seed + 1000 * int(draw))
    return _fixed(name)


@cache
def _fixed(split: str) -> StrokeData:
    faces, count, seed = SPLITS[split]
    return load(faces, count, seed)
