"""Where the handwriting recogniser's errors come from: ``python -m benchmarks.handwriting_errors``.

Issue 29, item 5: ``handwriting_ctc`` read the held-out complex script face ``scriptc`` at
28 % CER (greedy, no lexicon) against 4.7 % on the held-out Times italic (the weights before
the stroke variation; 20.3 % and 1.5 % after, trained 20 epochs). This measures, on the
shipped weights (or ``--weights``; Keras, greedy decoding), what a training session should
change:

1. CER and word accuracy per face: the test split (held-out words in the held-out faces),
   and a paired grid rendering the same held-out words, and some training words, by the
   same simulated writers in *every* face (training and held-out): does the model fail on
   the new face or on new words? (The loader has no split for this; the grid calls its
   rendering functions, :func:`zoo.datasets.hershey_strokes.write`, directly.)
2. ``scriptc``'s errors from an edit-distance alignment: substitutions, deletions,
   insertions, the most frequent confusions, CER by word length, by letter position
   (first / middle / last: do the joins between letters cost?) and per letter.
3. Probes needing no training. (a) How each face's strokes differ in what the model sees
   (points, pen lifts and ink per letter, pen-up jumps, spacing, width per letter, slant,
   ink drawn twice). (b) Test-time changes of the test trajectories (body-height scale,
   de-slant, width, resampling, a vote over such transforms) and, as diagnostics only,
   re-renderings from the font that no real trajectory allows: ``scriptc`` with its
   near-parallel "shading" strokes dropped, ``scripts`` with every stroke doubled like a
   complex face, letters spaced apart.
4. Every Hershey font: which are Latin, which draw the same lowercase glyphs as another
   (measured), which are script-like, which train, which test, which are free to add.

Writes benchmarks/results/handwriting_errors.{json,md}. Inference only: about 15,000 graph
calls at batch 1 on one thread (5 minutes on 2 cores that two trainings shared).
"""

from __future__ import annotations

import argparse
import string
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from benchmarks.run import RESULTS, save, stamp

MODEL = "handwriting_ctc"
WORDS = 300  # held-out (CMUdict test) words in the paired grid
SEEN_WORDS = 200  # CMUdict training words in the paired grid
SEED = 29
BOOTSTRAP = 1000
# Hershey fonts whose lowercase slots hold no Latin letters (inspected: Greek, Cyrillic,
# kana, symbols): never usable as training faces for a-z. (astrology, meteorology and
# music draw Latin lowercase: the font table finds whose.)
NOT_LATIN = {"greek": "Greek", "greekc": "Greek", "greeks": "Greek", "timesg": "Greek",
             "cyrillic": "Cyrillic", "cyrilc_1": "Cyrillic", "japanese": "Japanese",
             "markers": "symbols", "mathlow": "symbols", "mathupp": "symbols",
             "symbolic": "symbols"}
SCRIPT_LIKE = ("scripts", "cursive", "scriptc")  # joined, handwritten-looking faces


# --- alignment and error counting (pure) -----------------------------------------------------

def align(ref: str, hyp: str) -> list[tuple[str, str | None, str | None]]:
    """A minimum edit-distance alignment of ``hyp`` against ``ref``: a list of operations
    ``(kind, ref_char, hyp_char)`` in reading order, ``kind`` one of ``"="`` (match),
    ``"S"`` (substitution), ``"D"`` (a ref letter deleted, ``hyp_char`` None) and ``"I"``
    (a letter inserted, ``ref_char`` None). Ties go to the diagonal, then deletion."""
    n, m = len(ref), len(hyp)
    cost = np.zeros((n + 1, m + 1), np.int64)
    cost[:, 0], cost[0, :] = np.arange(n + 1), np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i, j] = min(cost[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]),
                             cost[i - 1, j] + 1, cost[i, j - 1] + 1)
    ops = []
    i, j = n, m
    while i or j:
        if i and j and cost[i, j] == cost[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]):
            ops.append(("=" if ref[i - 1] == hyp[j - 1] else "S", ref[i - 1], hyp[j - 1]))
            i, j = i - 1, j - 1
        elif i and cost[i, j] == cost[i - 1, j] + 1:
            ops.append(("D", ref[i - 1], None))
            i -= 1
        else:
            ops.append(("I", None, hyp[j - 1]))
            j -= 1
    return ops[::-1]


def tally(pairs) -> dict:
    """CER (with its substitutions, deletions, insertions) and word accuracy over
    ``pairs`` of (reference, transcript)."""
    kinds = Counter(op[0] for ref, hyp in pairs for op in align(ref, hyp))
    chars = sum(len(ref) for ref, _ in pairs)
    errors = kinds["S"] + kinds["D"] + kinds["I"]
    return {"words": len(pairs), "chars": chars, "substitutions": kinds["S"],
            "deletions": kinds["D"], "insertions": kinds["I"],
            "cer": errors / max(chars, 1),
            "word_accuracy": sum(r == h for r, h in pairs) / max(len(pairs), 1)}


def confusions(pairs, top: int = 15) -> dict:
    """The most frequent substitutions ``[ref, hyp, count]``, and deletions (by the ref
    letter) and insertions (by the inserted letter)."""
    subs, dels, ins = Counter(), Counter(), Counter()
    for ref, hyp in pairs:
        for kind, r, h in align(ref, hyp):
            if kind == "S":
                subs[r, h] += 1
            elif kind == "D":
                dels[r] += 1
            elif kind == "I":
                ins[h] += 1
    return {"substitutions": [[r, h, n] for (r, h), n in subs.most_common(top)],
            "deletions": dels.most_common(top), "insertions": ins.most_common(top)}


def by_length(pairs) -> dict[int, dict]:
    """CER and word accuracy per reference length."""
    groups: dict[int, list] = {}
    for ref, hyp in pairs:
        groups.setdefault(len(ref), []).append((ref, hyp))
    return {n: {k: t[k] for k in ("words", "cer", "word_accuracy")}
            for n, t in ((n, tally(g)) for n, g in sorted(groups.items()))}


def position(index: int, length: int) -> str:
    return "first" if index == 0 else "last" if index == length - 1 else "middle"


def by_position(pairs) -> dict:
    """Per reference position (first / middle / last letter): letters, substituted or
    deleted ones and their rate; insertions by where they fall (before the first letter,
    between two letters, after the last)."""
    letters, wrong = Counter(), Counter()
    inserted = Counter({"before": 0, "inside": 0, "after": 0})
    for ref, hyp in pairs:
        i = 0
        for kind, _, _ in align(ref, hyp):
            if kind == "I":
                inserted["before" if i == 0 else "after" if i == len(ref) else "inside"] += 1
                continue
            where = position(i, len(ref))
            letters[where] += 1
            wrong[where] += kind in "SD"
            i += 1
    out = {w: {"letters": letters[w], "errors": wrong[w],
               "rate": wrong[w] / letters[w] if letters[w] else None}
           for w in ("first", "middle", "last")}
    return {**out, "insertions": dict(inserted)}


def by_letter(pairs) -> dict[str, dict]:
    """Per reference letter: occurrences and the share substituted or deleted."""
    seen, wrong = Counter(), Counter()
    for ref, hyp in pairs:
        for kind, r, _ in align(ref, hyp):
            if r is not None:
                seen[r] += 1
                wrong[r] += kind in "SD"
    return {c: {"count": seen[c], "rate": wrong[c] / seen[c]} for c in sorted(seen)}


def bootstrap_cer(pairs, samples: int = BOOTSTRAP, seed: int = 0) -> list[float]:
    """A 95 % interval of the CER, resampling words."""
    from zoo.tasks.metrics import edit_distance

    errors = np.array([edit_distance(h, r) for r, h in pairs], np.float64)
    chars = np.array([len(r) for r, _ in pairs], np.float64)
    idx = np.random.default_rng(seed).integers(len(pairs), size=(samples, len(pairs)))
    cer = errors[idx].sum(1) / chars[idx].sum(1)
    return [float(np.percentile(cer, 2.5)), float(np.percentile(cer, 97.5))]


def paired_change(before, after, samples: int = BOOTSTRAP, seed: int = 0) -> list[float]:
    """The CER of ``after`` minus that of ``before`` (pairs of the same words, in the same
    order) and its 95 % interval, resampling words."""
    from zoo.tasks.metrics import edit_distance

    assert [r for r, _ in before] == [r for r, _ in after]
    delta = np.array([edit_distance(h2, r) - edit_distance(h1, r) for (r, h1), (_, h2)
                      in zip(before, after, strict=True)], np.float64)
    chars = np.array([len(r) for r, _ in before], np.float64)
    idx = np.random.default_rng(seed).integers(len(delta), size=(samples, len(delta)))
    boot = delta[idx].sum(1) / chars[idx].sum(1)
    return [float(delta.sum() / chars.sum()), float(np.percentile(boot, 2.5)),
            float(np.percentile(boot, 97.5))]


def spearman(x, y) -> float:
    """Spearman's rank correlation (ties get their mean rank)."""
    def ranks(v):
        v = np.asarray(v, np.float64)
        order = np.argsort(v, kind="stable")
        r = np.empty(len(v))
        r[order] = np.arange(len(v), dtype=np.float64)
        for value in np.unique(v):
            r[v == value] = r[v == value].mean()
        return r
    return float(np.corrcoef(ranks(x), ranks(y))[0, 1])


def vote(transcripts) -> str:
    """The most frequent transcript (ties: the earliest)."""
    counts = Counter(transcripts)
    return max(transcripts, key=lambda t: (counts[t], -transcripts.index(t)))


# --- trajectories (the loader's rendering, with stroke-level changes) -------------------------

def dense(stroke: np.ndarray, step: float = 0.5) -> np.ndarray:
    from zoo.datasets import hershey_strokes as hs

    return hs._resample(np.asarray(stroke, np.float64), step)


def near(points: np.ndarray, others: np.ndarray, radius: float) -> np.ndarray:
    """For each of ``points``, whether one of ``others`` lies within ``radius``."""
    if not len(others):
        return np.zeros(len(points), bool)
    d = np.linalg.norm(points[:, None, :] - others[None, :, :], axis=-1)
    return d.min(axis=1) < radius


def thin(groups, radius: float = 2.0, share: float = 0.7):
    """Drops, per letter, each stroke of which ``share`` or more lies within ``radius`` font
    units of the letter's strokes kept before it: a complex face's parallel "shading"
    lines. Returns the groups and the number of strokes dropped."""
    out, dropped = [], 0
    for letter in groups:
        kept: list[np.ndarray] = []
        for stroke in letter:
            pts = dense(stroke)
            ink = np.concatenate([dense(k) for k in kept]) if kept else np.zeros((0, 2))
            if kept and len(pts) > 1 and near(pts, ink, radius).mean() >= share:
                dropped += 1
                continue
            kept.append(stroke)
        out.append(kept)
    return out, dropped


def duplex(groups, offset: float = 1.0, min_length: float = 4.0):
    """Adds after each stroke of ``min_length`` font units or more a copy shifted
    ``offset`` along its normal, as complex faces thicken their lines."""
    from zoo.datasets import hershey_strokes as hs

    out = []
    for letter in groups:
        strokes = []
        for stroke in letter:
            strokes.append(stroke)
            if len(stroke) >= 2 and hs.length(stroke) >= min_length:
                strokes.append(hs.shading(stroke, offset))
        out.append(strokes)
    return out


def spaced(groups, gap: float):
    """Letter k moved ``k * gap`` font units right: no letter touches the next."""
    return [[s + [k * gap, 0.0] for s in letter] for k, letter in enumerate(groups)]


def split_middle(groups, min_length: float = 8.0):
    """Each stroke of ``min_length`` font units or more split in two at its middle point:
    the same ink with one more pen lift."""
    out = []
    for letter in groups:
        strokes = []
        for stroke in letter:
            if len(stroke) > 2 and np.linalg.norm(np.diff(stroke, axis=0), axis=1).sum() \
                    >= min_length:
                mid = len(stroke) // 2
                strokes += [stroke[: mid + 1], stroke[mid:]]
            else:
                strokes.append(stroke)
        out.append(strokes)
    return out


def split_cusps(groups, angle: float = 100.0):
    """Each stroke split at every vertex where it turns by more than ``angle`` degrees (a
    cusp, where a print face would lift the pen)."""
    from zoo.datasets import hershey_strokes as hs

    out = []
    for letter in groups:
        strokes = []
        for stroke in letter:
            keep = np.linalg.norm(np.diff(stroke, axis=0), axis=1) > 0
            if keep.sum() < 2:
                strokes.append(stroke)
                continue
            pts = stroke[np.concatenate([[True], keep])]
            strokes += hs.split_stroke(pts, hs.cusps(pts, angle))
        out.append(strokes)
    return out


def reverse(groups):
    """Every stroke drawn from its other end."""
    return [[s[::-1] for s in letter] for letter in groups]


def chain(groups):
    """Each letter's strokes joined into one pen-down line: the next stroke (in drawing
    order) turned to start at its end nearer the pen, the pen dragged there."""
    out = []
    for letter in groups:
        line = letter[0]
        for stroke in letter[1:]:
            if np.linalg.norm(stroke[-1] - line[-1]) < np.linalg.norm(stroke[0] - line[-1]):
                stroke = stroke[::-1]
            line = np.concatenate([line, stroke])
        out.append([line])
    return out


def flatten(groups) -> list[np.ndarray]:
    return [s for letter in groups for s in letter]


def split_strokes(x: np.ndarray) -> list[np.ndarray]:
    """Absolute pen positions (font units) per pen-down stroke of a trajectory."""
    from zoo.datasets import hershey_strokes as hs

    xy = hs.absolute(x)
    starts = [i for i in range(len(x)) if x[i, 2] == 1.0] + [len(x)]
    return [xy[a:b] for a, b in zip(starts[:-1], starts[1:], strict=True)]


def resample(x: np.ndarray, step: float) -> np.ndarray:
    """The trajectory's strokes resampled every ``step`` font units (as
    :func:`zoo.datasets.hershey_strokes.from_points` does for device input)."""
    from zoo.datasets import hershey_strokes as hs

    return hs.from_points([s.tolist() for s in split_strokes(x)], hs.BODY, step)


def affine(x: np.ndarray, scale: float = 1.0, shear: float = 0.0,
           width: float = 1.0) -> np.ndarray:
    """Moves scaled (the body height assumed ``1 / scale`` of the true one), sheared
    (``x += shear * y``: de-slants for shear < 0 on a right-leaning hand) and widened."""
    out = np.array(x, np.float32)
    out[:, 0] = (out[:, 0] + shear * out[:, 1]) * width * scale
    out[:, 1] = out[:, 1] * scale
    return out


# --- face statistics -----------------------------------------------------------------------

def glyph_stats(face: str) -> dict:
    """The font's lowercase a-z: pen-down strokes and ink per letter (body heights), the
    height from lowest to highest point (body heights: the loader divides by 21 font
    units for every face) and the share of ink lying within 1.5 font units of another
    stroke of the same letter (ink drawn twice; 2 font units at each stroke's ends,
    where strokes meet, not counted)."""
    from zoo.datasets import hershey_strokes as hs

    strokes_n, ink, doubled, inner = [], [], 0, 0
    ys = []
    for ch in string.ascii_lowercase:
        letter = hs.glyph_strokes(ch, face)
        strokes_n.append(len(letter))
        pts = [dense(s) for s in letter]
        ys += [p[:, 1] for p in pts]
        ink.append(sum(np.linalg.norm(np.diff(s, axis=0), axis=1).sum() for s in letter))
        for k, p in enumerate(pts):
            if len(p) < 10:
                continue
            core = p[4:-4]
            others = [q for j, q in enumerate(pts) if j != k] or [np.zeros((0, 2))]
            doubled += int(near(core, np.concatenate(others), 1.5).sum())
            inner += len(core)
    ys = np.concatenate(ys)
    return {"strokes_per_letter": float(np.mean(strokes_n)),
            "ink_per_letter": float(np.mean(ink)) / hs.BODY,
            "height": float(ys.max() - ys.min()) / hs.BODY,
            "doubled_ink": doubled / max(inner, 1)}


def trajectory_stats(xs, texts) -> dict:
    """What the model reads, over trajectories ``xs`` of words ``texts``: points and pen
    lifts per letter, the share of rows with the pen lifted, the mean pen-up jump and the
    share of jumps going left (body heights), the mean spacing of pen-down points, the
    width per letter (the word's x extent over its letters) and the slant (median dx/dy of
    the steep pen-down moves: +0.3 leans right)."""
    letters = sum(len(t) for t in texts)
    rows = np.concatenate(xs)
    jumps = np.concatenate([x[1:][x[1:, 2] == 1.0] for x in xs])
    down = rows[rows[:, 2] == 0.0]
    steep = down[np.abs(down[:, 1]) > 1.5 * np.abs(down[:, 0])]
    widths = [np.ptp(np.cumsum(x[:, 0])) / len(t) for x, t in zip(xs, texts, strict=True)]
    return {"points_per_letter": len(rows) / letters,
            "pen_lifts_per_letter": float(rows[:, 2].sum()) / letters,
            "pen_up_share": float(rows[:, 2].mean()),
            "jump": float(np.linalg.norm(jumps[:, :2], axis=1).mean()),
            "jumps_left": float((jumps[:, 0] < 0).mean()),
            "spacing": float(np.linalg.norm(down[:, :2], axis=1).mean()),
            "width_per_letter": float(np.mean(widths)),
            "slant": float(np.median(steep[:, 0] / steep[:, 1]))}


def glyph_points(face: str, letter: str) -> np.ndarray:
    """The font's ink for one letter (points every 0.5 font units), centred in x."""
    from zoo.datasets import hershey_strokes as hs

    pts = np.concatenate([dense(s) for s in hs.glyph_strokes(letter, face)])
    return pts - [(pts[:, 0].min() + pts[:, 0].max()) / 2, 0.0]


def chamfer(a: np.ndarray, b: np.ndarray) -> float:
    """Symmetric mean nearest-point distance between two point sets."""
    d = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)
    return float((d.min(axis=1).mean() + d.min(axis=0).mean()) / 2)


def nearest_glyphs(face: str, references) -> dict[str, dict]:
    """For each letter of ``face``: the nearest glyph (chamfer distance, font units) among
    every letter of the ``references`` faces, and the nearest of the same letter."""
    ref = {(f, c): glyph_points(f, c) for f in references for c in string.ascii_lowercase}
    out = {}
    for c in string.ascii_lowercase:
        mine = glyph_points(face, c)
        dist = {key: chamfer(mine, pts) for key, pts in ref.items()}
        (f, best) = min(dist, key=dist.get)
        own = min((k for k in dist if k[1] == c), key=dist.get)
        out[c] = {"nearest": [f, best], "distance": dist[f, best],
                  "same_letter": [own[0], c], "same_letter_distance": dist[own]}
    return out


def font_table() -> list[dict]:
    """Every Hershey font of the package: its script, the training or test face it draws
    the same lowercase a-z as (exactly equal strokes), and its role here."""
    from HersheyFonts import HersheyFonts

    from zoo.datasets import hershey_strokes as hs

    def glyphs(name):
        font = HersheyFonts()
        font.load_default_font(name)
        return [tuple(tuple(map(tuple, s)) for s in font.strokes_for_text(ch))
                for ch in string.ascii_lowercase]

    used = hs.TRAIN_FACES + hs.TEST_FACES
    reference = {f: glyphs(f) for f in used}
    rows = []
    for name in HersheyFonts().default_font_names:
        mine = reference.get(name) or glyphs(name)
        same = next((f for f in used if f != name and mine == reference[f]), None)
        role = ("training" if name in hs.TRAIN_FACES else "test" if name in hs.TEST_FACES
                else f"same glyphs as {same} (held out: adding it would leak)"
                if same in hs.TEST_FACES else f"same glyphs as {same}" if same else
                f"not Latin ({NOT_LATIN[name]})" if name in NOT_LATIN else "free to add")
        rows.append({"face": name, "script": "Latin" if same else NOT_LATIN.get(name, "Latin"),
                     "script_like": name in SCRIPT_LIKE, "same_as": same, "role": role})
    return rows


# --- the measurement -----------------------------------------------------------------------

def recogniser(weights="DEFAULT", threads: int | None = 1):
    """``read(list of trajectories) -> transcripts`` with the model's Keras graph."""
    from zoo import create_model
    from zoo._keras import tf
    from zoo.graphs import keras_graphs
    from zoo.registry import get_spec
    from zoo.tasks import get_task

    if threads:
        try:  # TensorFlow's pool is fixed once it started
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:
            pass
    spec = get_spec(MODEL)
    graphs = keras_graphs(spec, create_model(MODEL, weights=weights))
    task = get_task(spec.task)

    def read(xs):
        return task.predict(graphs, [np.asarray(x, np.float32) for x in xs], spec.meta)

    return read


def summary(pairs) -> dict:
    return {**tally(pairs), "cer_95": bootstrap_cer(pairs)}


def paired_grid(words: int, seen_words: int, seed: int = SEED):
    """Held-out and training words, one simulated writer each (style and random draws),
    every word written by its writer in every training and test face."""
    from zoo.datasets import hershey_strokes as hs

    rng = np.random.default_rng(seed)
    sets = {}
    for name, split, count in (("held-out words", "test", words),
                               ("training words", "train", seen_words)):
        pool = hs._words(split)
        chosen = [pool[int(i)] for i in rng.choice(len(pool), count, replace=False)]
        styles = [hs.WriterStyle.sample(rng) for _ in chosen]
        sets[name] = (chosen, styles, [[seed, len(sets), i] for i in range(count)])
    return sets


def render(words, styles, keys, face: str, change=None) -> list[np.ndarray]:
    """Each word by its writer in ``face``; ``change`` (letter groups -> letter groups)
    alters the font's strokes first."""
    from zoo.datasets import hershey_strokes as hs

    out = []
    for word, style, key in zip(words, styles, keys, strict=True):
        groups = hs.letter_strokes(word, face)
        if change is not None:
            groups = change(groups)
        out.append(hs.write_strokes(flatten(groups), style, np.random.default_rng(key)))
    return out


def run(words: int = WORDS, seen_words: int = SEEN_WORDS, weights="DEFAULT",
        threads: int | None = 1, limit: int | None = None, progress=print) -> dict:
    from zoo import datasets
    from zoo.datasets import hershey_strokes as hs

    read = recogniser(weights, threads)
    faces = hs.TRAIN_FACES + hs.TEST_FACES

    # 1. the test split, by face
    test = datasets.load("hershey_strokes", "test")
    if limit:
        test = type(test)(test.x[:limit], test.texts[:limit], test.faces[:limit])
    test_out = read(test.x)
    by_face = {f: [(t, p) for t, p, g in zip(test.texts, test_out, test.faces, strict=True)
                   if g == f] for f in hs.TEST_FACES}
    results: dict = {"test_split": {"all": summary(list(zip(test.texts, test_out,
                                                            strict=True))),
                                    **{f: summary(p) for f, p in by_face.items()}}}
    progress(f"test split: {results['test_split']['all']['cer']:.4f}")

    # 1. the paired grid: every face, held-out and training words, the same writers
    sets = paired_grid(words, seen_words)
    grid, grid_pairs = {}, {}
    for name, (chosen, styles, keys) in sets.items():
        for face in faces:
            out = read(render(chosen, styles, keys, face))
            grid_pairs[name, face] = list(zip(chosen, out, strict=True))
            grid.setdefault(name, {})[face] = summary(grid_pairs[name, face])
        progress(f"grid {name}: " + ", ".join(f"{f} {grid[name][f]['cer']:.3f}"
                                              for f in faces))
    results["grid"] = grid
    held = "held-out words"
    results["grid_training_faces"] = {
        name: summary([p for f in hs.TRAIN_FACES for p in grid_pairs[name, f]])
        for name in sets}

    # 2. scriptc's errors (the test split's scriptc words), beside the grid's faces
    sc = by_face["scriptc"]
    results["scriptc_errors"] = {
        "tally": tally(sc), "confusions": confusions(sc), "by_length": by_length(sc),
        "by_position": {
            "scriptc (test split)": by_position(sc),
            **{f"{f} (grid)": by_position(grid_pairs[held, f])
               for f in ("scriptc", "scripts", "timesi", "timesib")}},
        "by_letter": {f: by_letter(grid_pairs[held, f])
                      for f in ("scriptc", "scripts", "timesi")},
        "grid_confusions": {f: confusions(grid_pairs[held, f], 8)
                            for f in ("scriptc", "scripts")},
        "strokes_per_letter": {
            c: {"scripts": len(hs.glyph_strokes(c, "scripts")),
                "scriptc": len(hs.glyph_strokes(c, "scriptc")),
                "scriptc without shading": len(thin(hs.letter_strokes(c, "scriptc"))[0][0])}
            for c in string.ascii_lowercase},
    }
    e = results["scriptc_errors"]
    common = [c for c, v in e["by_letter"]["scriptc"].items() if v["count"] >= 10]
    e["stroke_count_vs_errors"] = {
        "letters": len(common), "spearman": spearman(
            [e["strokes_per_letter"][c]["scriptc without shading"]
             - e["strokes_per_letter"][c]["scripts"] for c in common],
            [e["by_letter"]["scriptc"][c]["rate"] for c in common])}

    # 3a. what differs in the strokes: the font's glyphs, and the trajectories of the
    # held-out words written without writer variation (step 1.5, no jitter)
    plain_style = hs.WriterStyle()
    chosen, styles, keys = sets[held]
    results["face_stats"] = {
        f: {**glyph_stats(f),
            **trajectory_stats(render(chosen, [plain_style] * len(chosen), keys, f), chosen)}
        for f in faces}

    results["nearest_training_glyph"] = {f: nearest_glyphs(f, hs.TRAIN_FACES)
                                         for f in hs.TEST_FACES}

    # 3b. test-time changes of the test split's trajectories (both held-out faces)
    transforms = {
        "as recorded": lambda x: x,
        "moves x0.8 (body height read 1.25x)": lambda x: affine(x, scale=0.8),
        "moves x0.9": lambda x: affine(x, scale=0.9),
        "moves x1.1": lambda x: affine(x, scale=1.1),
        "moves x1.25 (body height read 0.8x)": lambda x: affine(x, scale=1.25),
        "de-slant -0.2": lambda x: affine(x, shear=-0.2),
        "slant +0.2": lambda x: affine(x, shear=0.2),
        "width x0.8": lambda x: affine(x, width=0.8),
        "width x1.25": lambda x: affine(x, width=1.25),
        "resampled every 1.0": lambda x: resample(x, 1.0),
        "resampled every 1.5": lambda x: resample(x, 1.5),
        "resampled every 2.5": lambda x: resample(x, 2.5),
    }
    vote_of = ("as recorded", "moves x0.9", "moves x1.1", "width x0.8", "width x1.25")
    test_time = {}
    for face in hs.TEST_FACES:
        texts = [t for t, _ in by_face[face]]
        xs = [x for x, g in zip(test.x, test.faces, strict=True) if g == face]
        outs = {}
        for name, fn in transforms.items():
            outs[name] = ([p for _, p in by_face[face]] if name == "as recorded"
                          else read([fn(x) for x in xs]))
        outs["vote of 5 (recorded, moves x0.9/x1.1, width x0.8/x1.25)"] = [
            vote([outs[n][i] for n in vote_of]) for i in range(len(xs))]
        recorded = list(zip(texts, outs["as recorded"], strict=True))
        test_time[face] = {n: {**summary(list(zip(texts, o, strict=True))),
                               "change": paired_change(recorded, list(zip(texts, o,
                                                                          strict=True)))}
                           for n, o in outs.items()}
        progress(f"test-time {face}: " + ", ".join(f"{n} {s['cer']:.3f}"
                                                    for n, s in test_time[face].items()))
    results["test_time"] = test_time

    # 3b. re-rendered from the font (diagnostics: no real trajectory allows these)
    dropped = Counter()

    def thinned(key):
        def change(groups):
            groups, n = thin(groups)
            dropped[key] += n
            return groups
        return change

    body = hs.BODY
    renders = {
        ("scriptc", "shading strokes dropped"): thinned("scriptc"),
        ("scriptc", "shading strokes dropped, each letter one pen-down line"):
            lambda g: chain(thin(g)[0]),
        ("scriptc", "each letter one pen-down line"): chain,
        ("scriptc", "letters spaced 0.25 body apart"): lambda g: spaced(g, 0.25 * body),
        ("scripts", "shading strokes dropped (control)"): thinned("scripts"),
        ("scripts", "every stroke doubled (offset 1 font unit)"): duplex,
        ("scripts", "pen lifted at every cusp (> 100 degrees)"): split_cusps,
        ("scripts", "pen lifted at the middle of every stroke"): split_middle,
        ("scripts", "every stroke drawn backwards"): reverse,
        ("scripts", "letters spaced 0.25 body apart"): lambda g: spaced(g, 0.25 * body),
        ("timesi", "shading strokes dropped"): thinned("timesi"),
        ("timesib", "shading strokes dropped"): thinned("timesib"),
        ("futural", "every stroke doubled (offset 1 font unit)"): duplex,
        ("futural", "pen lifted at the middle of every stroke"): split_middle,
    }
    rerendered = {}
    for (face, name), change in renders.items():
        out = read(render(chosen, styles, keys, face, change))
        pairs = list(zip(chosen, out, strict=True))
        row = {"face": face, "baseline_cer": grid[held][face]["cer"], **summary(pairs),
               "change": paired_change(grid_pairs[held, face], pairs)}
        if "dropped" in name:
            row["strokes_dropped_per_letter"] = dropped[face] / sum(map(len, chosen))
        rerendered[f"{face}: {name}"] = row
    progress("re-rendered: " + ", ".join(f"{n} {s['cer']:.3f}" for n, s in rerendered.items()))
    results["rerendered"] = rerendered

    # 4. the fonts
    results["fonts"] = font_table()
    results["setup"] = {"model": MODEL, "weights": str(weights), "decoder": "greedy",
                        "backend": "keras", "test_words": len(test.texts),
                        "test_limit": limit, "grid_held_out_words": words,
                        "grid_training_words": seen_words,
                        "seed": SEED, "bootstrap": BOOTSTRAP}
    return results


# --- the report ----------------------------------------------------------------------------

def pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def ci(s) -> str:
    return f"{pct(s['cer'])} ({100 * s['cer_95'][0]:.1f}–{100 * s['cer_95'][1]:.1f})"


def change(s) -> str:
    d, lo, hi = (100 * v for v in s["change"])
    return f"{d:+.1f} pt ({lo:+.1f} to {hi:+.1f})"


def markdown(results: dict) -> str:
    from zoo.datasets import hershey_strokes as hs

    setup = results["setup"]
    held, seen = "held-out words", "training words"
    lines = [
        f"Measured {results['date']} on {results['machine']}: `{setup['model']}`, shipped "
        f"weights, Keras, greedy CTC decoding, no lexicon. CER with a 95 % interval "
        f"(bootstrap over words). Command: `{results['command']}`.", "",
        "### 1. The test split, by face", "",
        "| face | words | CER (95 %) | word accuracy | substitutions | deletions | "
        "insertions |", "|---|---|---|---|---|---|---|"]
    for name, s in results["test_split"].items():
        lines.append(f"| {name} | {s['words']} | {ci(s)} | {s['word_accuracy']:.3f} | "
                     f"{s['substitutions']} | {s['deletions']} | {s['insertions']} |")
    lines += [
        "", "### 1. New face or new words? (paired grid)", "",
        f"The same {setup['grid_held_out_words']} held-out (CMUdict test) words and "
        f"{setup['grid_training_words']} training words, each written by one simulated "
        "writer (style and random draws) in every face.", "",
        "| face | role | CER, held-out words (95 %) | word acc. | CER, training words "
        "(95 %) | word acc. |", "|---|---|---|---|---|---|"]
    for face in hs.TRAIN_FACES + hs.TEST_FACES:
        a, b = results["grid"][held][face], results["grid"][seen][face]
        role = "training" if face in hs.TRAIN_FACES else "**held out**"
        lines.append(f"| {face} | {role} | {ci(a)} | {a['word_accuracy']:.3f} | {ci(b)} | "
                     f"{b['word_accuracy']:.3f} |")
    a, b = (results["grid_training_faces"][k] for k in (held, seen))
    lines.append(f"| all 9 training faces | training | {ci(a)} | {a['word_accuracy']:.3f} | "
                 f"{ci(b)} | {b['word_accuracy']:.3f} |")

    e = results["scriptc_errors"]
    t = e["tally"]
    errors = t["substitutions"] + t["deletions"] + t["insertions"]
    lines += [
        "", "### 2. scriptc's errors (test split)", "",
        f"{t['words']} words, {t['chars']} letters, {errors} edits: substitutions "
        f"{t['substitutions']} ({pct(t['substitutions'] / errors)}), deletions "
        f"{t['deletions']} ({pct(t['deletions'] / errors)}), insertions {t['insertions']} "
        f"({pct(t['insertions'] / errors)}).", "",
        "Most frequent substitutions (letter → read as): " + ", ".join(
            f"{r}→{h} {n}" for r, h, n in e["confusions"]["substitutions"]) + ".", "",
        "Deleted letters: " + ", ".join(f"{c} {n}" for c, n in e["confusions"]["deletions"])
        + ". Inserted letters: " + ", ".join(f"{c} {n}" for c, n in
                                            e["confusions"]["insertions"]) + ".", "",
        "The grid's scripts (same words and writers): " + (", ".join(
            f"{r}→{h} {n}" for r, h, n in e["grid_confusions"]["scripts"]["substitutions"])
            or "no substitutions") + ".", "",
        "| word length | words | CER | word accuracy |", "|---|---|---|---|"]
    for n, s in e["by_length"].items():
        lines.append(f"| {n} | {s['words']} | {pct(s['cer'])} | {s['word_accuracy']:.3f} |")
    lines += ["", "Letters substituted or deleted, by position in the word; insertions by "
              "where they fall:", "",
              "| set | first | middle | last | insertions before / inside / after |",
              "|---|---|---|---|---|"]
    for name, p in e["by_position"].items():
        ins = p["insertions"]
        lines.append(f"| {name} | " + " | ".join(
            f"{pct(p[w]['rate'])} of {p[w]['letters']}" for w in ("first", "middle", "last"))
            + f" | {ins['before']} / {ins['inside']} / {ins['after']} |")
    letters = e["by_letter"]
    worst = sorted(letters["scriptc"], key=lambda c: -letters["scriptc"][c]["rate"])[:14]
    near_glyph = results["nearest_training_glyph"]
    lines += ["", "Per letter, the share substituted or deleted (grid, held-out words; the "
              "14 worst on scriptc), and the training glyph nearest to scriptc's (chamfer "
              "distance over the font's ink, font units; every letter of the 9 training "
              "faces):", "",
              "| letter | count | scriptc | scripts | timesi | nearest training glyph to "
              "scriptc's | nearest of the same letter | strokes: scripts / scriptc / "
              "scriptc without shading |", "|---|---|---|---|---|---|---|---|"]
    for c in worst:
        g, n = near_glyph["scriptc"][c], e["strokes_per_letter"][c]
        lines.append(f"| {c} | {letters['scriptc'][c]['count']} | " + " | ".join(
            pct(letters[f].get(c, {}).get("rate")) for f in ("scriptc", "scripts", "timesi"))
            + f" | {g['nearest'][1]} ({g['nearest'][0]}, {g['distance']:.2f}) | "
            f"{g['same_letter'][0]}, {g['same_letter_distance']:.2f} | {n['scripts']} / "
            f"{n['scriptc']} / {n['scriptc without shading']} |")
    r = e["stroke_count_vs_errors"]
    lines += ["", f"Across the {r['letters']} letters seen 10 times or more, Spearman's "
              "correlation between a letter's error rate on scriptc and its extra strokes "
              f"(scriptc without shading minus scripts): {r['spearman']:+.2f}."]
    for face in near_glyph:
        other = [c for c, g in near_glyph[face].items() if g["nearest"][1] != c]
        lines += ["", f"{face}: {len(other)} of 26 letters lie nearer a training glyph of "
                  "another letter than any of their own" + (": " + ", ".join(
                      f"{c}→{near_glyph[face][c]['nearest'][1]}" for c in other) if other
                      else "") + "."]

    lines += [
        "", "### 3a. How the faces' strokes differ", "",
        "The font's a-z (strokes, ink, height, ink drawn twice), and the grid's held-out "
        "words written without writer variation (step 1.5 font units, no jitter, no "
        "slant). Lengths in body heights (21 font units).", "",
        "| face | strokes / letter | ink / letter | height | ink drawn twice | points / "
        "letter | pen lifts / letter | pen-up rows | pen-up jump | jumps going left | "
        "spacing | width / letter | slant |", "|---|" + "---|" * 12]
    for face, s in results["face_stats"].items():
        lines.append(
            f"| {face} | {s['strokes_per_letter']:.2f} | {s['ink_per_letter']:.2f} | "
            f"{s['height']:.2f} | {pct(s['doubled_ink'])} | {s['points_per_letter']:.1f} | "
            f"{s['pen_lifts_per_letter']:.2f} | {pct(s['pen_up_share'])} | "
            f"{s['jump']:.2f} | {pct(s['jumps_left'])} | {s['spacing']:.3f} | "
            f"{s['width_per_letter']:.2f} | {s['slant']:+.2f} |")

    lines += ["", "### 3b. Test-time changes (diagnostics, test split)", "",
              "Changes of the recorded trajectories; the change in CER against them is "
              "paired (the same words), with its 95 % interval.", "",
              "| change | scriptc CER (95 %) | change | scriptc word acc. | timesi CER "
              "(95 %) | change |", "|---|---|---|---|---|---|"]
    tt = results["test_time"]
    for name in tt["scriptc"]:
        a, b = tt["scriptc"][name], tt["timesi"][name]
        lines.append(f"| {name} | {ci(a)} | {change(a)} | {a['word_accuracy']:.3f} | "
                     f"{ci(b)} | {change(b)} |")
    lines += ["", "Re-rendered from the font (diagnostics only: no real trajectory allows "
              "these), the grid's held-out words and writers; the change is paired with the "
              "grid's rendering of the same words:", "",
              "| face: change | CER before | CER after (95 %) | change | word acc. | strokes "
              "dropped / letter |", "|---|---|---|---|---|---|"]
    for name, s in results["rerendered"].items():
        dropped = s.get("strokes_dropped_per_letter")
        lines.append(f"| {name} | {pct(s['baseline_cer'])} | {ci(s)} | {change(s)} | "
                     f"{s['word_accuracy']:.3f} | "
                     f"{'–' if dropped is None else f'{dropped:.2f}'} |")

    lines += ["", "### 4. The Hershey fonts", "",
              "| font | script | script-like | role here |", "|---|---|---|---|"]
    for f in results["fonts"]:
        lines.append(f"| {f['face']} | {f['script']} | {'yes' if f['script_like'] else ''} | "
                     f"{f['role']} |")
    free = [f["face"] for f in results["fonts"] if f["role"] == "free to add"]
    lines += ["", "Free to add as training faces (Latin, glyphs unlike every training and "
              "test face): " + (", ".join(free) if free else "**none**") + "."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.handwriting_errors",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--words", type=int, default=WORDS, help="held-out words in the grid")
    p.add_argument("--seen-words", type=int, default=SEEN_WORDS,
                   help="training words in the grid")
    p.add_argument("--limit", type=int, default=None, help="test-split words (default: all)")
    p.add_argument("--threads", type=int, default=1, help="TensorFlow threads (0: its own)")
    p.add_argument("--weights", default="DEFAULT",
                   help="a weights file (.weights.h5) to measure instead of the shipped one")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    results = {**stamp("benchmarks.handwriting_errors", argv),
               **run(args.words, args.seen_words, weights=args.weights,
                     threads=args.threads or None, limit=args.limit)}
    save(results, markdown(results), args.out, "handwriting_errors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
