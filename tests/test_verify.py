"""The tensor comparison rule of parity checks (absolute, and allclose-style relative)."""

import numpy as np
import pytest

from export.verify import diff_stats, finish_stats


def stats(ref, got, relative=None):
    acc: dict = {}
    diff_stats({"probs": np.asarray(ref)}, {"probs": np.asarray(got)}, acc, relative)
    return finish_stats(acc, relative)["probs"]


def test_absolute_only():
    s = stats([0.5, 0.5], [0.5 + 2e-5, 0.5 - 2e-5])
    assert s["max_abs"] == pytest.approx(2e-5)
    assert "max_excess" not in s


def test_relative_allowance_scales_with_the_value():
    # a near-tie (p = 0.5) may move by 5e-4 * 0.5 = 2.5e-4 beyond the absolute part ...
    s = stats([0.5, 0.5], [0.5 + 2e-4, 0.5 - 2e-4], {"probs": 5e-4})
    assert s["max_abs"] == pytest.approx(2e-4)
    assert s["max_excess"] <= 0
    # ... but a tiny probability may not: 1e-4 on p = 1e-6 is an excess of ~1e-4
    s = stats([1e-6, 1 - 1e-6], [1e-6 + 1e-4, 1 - 1e-6 - 1e-4], {"probs": 5e-4})
    assert s["max_excess"] == pytest.approx(1e-4 - 5e-4 * 1e-6, rel=1e-6)


def test_excess_is_the_max_over_calls():
    acc: dict = {}
    rel = {"probs": 1e-3}
    diff_stats({"probs": np.array([1.0])}, {"probs": np.array([1.0 + 3e-3])}, acc, rel)
    diff_stats({"probs": np.array([0.0])}, {"probs": np.array([1e-5])}, acc, rel)
    s = finish_stats(acc, rel)["probs"]
    assert s["max_abs"] == pytest.approx(3e-3)
    assert s["max_excess"] == pytest.approx(2e-3)
