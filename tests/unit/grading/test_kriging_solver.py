"""The county run's kriging solver (``estimation._krige_rows``) against PyKrige, the reference.

The hot path solves PyKrige's ordinary-kriging system itself, for all targets at once; here every
target is kriged again by PyKrige's ``execute`` on exactly its neighbours. PyKrige does not give
the weights, but kriging is linear in the values: kriging the unit vector eᵢ gives weight wᵢ. So
the expected estimate is PyKrige's, or Deutsch's correction of PyKrige's weights where one is
negative, and the expected variance is PyKrige's.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from pykrige.ok import OrdinaryKriging

from fieldsvc.grading import estimation as es


def _model(kind: str, nugget: float, sill: float, range_m: float, log: bool = False) -> es.Model:
    return es.Model("X", es.KRIGING, log, 100, variogram={"model": kind, "nugget": nugget, "sill": sill,
                                                           "range_m": range_m})


def _pykrige(model: es.Model, pts: np.ndarray, z: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """PyKrige's moving-window kriging (C backend) of one target from exactly these points."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ok = OrdinaryKriging(pts[:, 0], pts[:, 1], z, variogram_model=model.variogram["model"],
                             variogram_parameters=es._pykrige_params(model))
        est, var = ok.execute("points", target[:1], target[1:], backend="C", n_closest_points=len(pts))
    return float(np.asarray(est)[0]), float(np.asarray(var)[0])


def _expected(model: es.Model, sxy: np.ndarray, vals: np.ndarray, txy: np.ndarray, idx: np.ndarray,
              counts: np.ndarray, min_n: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Per target: PyKrige's estimate (corrected where a weight is negative) and variance; and how
    many targets needed the correction."""
    est, var = np.full(len(txy), np.nan), np.full(len(txy), np.nan)
    corrected = 0
    for t in range(len(txy)):
        n = int(counts[t])
        if n < min_n:
            continue
        nb = idx[t, :n]
        pts, z = sxy[nb], vals[nb]
        est[t], var[t] = _pykrige(model, pts, z, txy[t])
        w = np.array([_pykrige(model, pts, np.eye(n)[i], txy[t])[0] for i in range(n)])
        assert abs(w.sum() - 1) < 1e-9
        assert abs(float(w @ z) - est[t]) <= 1e-9 * max(1.0, abs(est[t]))  # linear: the weights are right
        if (w < -1e-12).any():
            wp = np.clip(w, 0, None)
            est[t] = float(wp @ z / wp.sum())
            corrected += 1
    return est, var, corrected


@pytest.mark.parametrize("kind,nugget,seed", [("spherical", 0.05, 0), ("exponential", 0.02, 1),
                                              ("gaussian", 0.08, 2), ("spherical", 0.0, 3)])
def test_solver_equals_pykrige_estimates_and_variances(kind, nugget, seed):
    rng = np.random.default_rng(seed)
    sxy = rng.uniform(0, 6000, (150, 2))
    vals = 2.0 + np.sin(sxy[:, 0] / 1500) + rng.normal(0, 0.3, len(sxy))
    txy = np.vstack([rng.uniform(0, 6000, (60, 2)), sxy[:3]])  # three targets on a sample
    params = es.EstimationParams(search_radius_m=900, min_neighbours=3, max_neighbours=12)
    model = _model(kind, nugget, nugget + 0.4, 2500.0)
    surf = es.estimate_points(model, sxy, vals, txy, params)
    assert len(set(surf.count.tolist())) > 3  # windows of several sizes
    exp_est, exp_var, corrected = _expected(model, sxy, vals, txy, surf.idx, surf.count, params.min_neighbours)
    assert corrected > 0  # the negative-weight correction is exercised
    ok = np.isfinite(exp_est)
    assert ok.sum() > 40 and np.array_equal(ok, np.isfinite(surf.y))
    np.testing.assert_allclose(surf.y[ok], exp_est[ok], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(surf.var[ok], np.maximum(exp_var[ok], 0.0), rtol=1e-9, atol=1e-12)
    on_sample = np.arange(len(txy) - 3, len(txy))
    np.testing.assert_allclose(surf.y[on_sample], vals[:3], rtol=1e-9)  # exact at a sample


def test_windows_kept_for_the_next_analyte_give_the_same_answer():
    rng = np.random.default_rng(5)
    sxy = rng.uniform(0, 5000, (120, 2))
    txy = rng.uniform(0, 5000, (400, 2))
    params = es.EstimationParams(search_radius_m=1000)
    near = es._neighbours(sxy, txy, params)
    windows: dict = {}
    for kind, vals in (("spherical", rng.lognormal(0, 0.5, 120)), ("exponential", rng.lognormal(1, 0.3, 120))):
        model = _model(kind, 0.03, 0.3, 2000.0, log=True)
        shared = es.estimate_points(model, sxy, vals, txy, params, neighbours=near, windows=windows)
        alone = es.estimate_points(model, sxy, vals, txy, params)
        np.testing.assert_array_equal(shared.y, alone.y)
        np.testing.assert_array_equal(shared.var, alone.var)
    assert windows  # the second analyte reused the first one's geometry


def test_a_screened_sample_cannot_lower_the_estimate_by_rising():
    """A sample straight behind another gets a negative kriging weight; corrected, raising it
    never lowers the estimate (the precaution the correction is for)."""
    sxy = np.array([[100.0, 0.0], [300.0, 0.0], [0.0, 400.0], [0.0, -400.0], [-400.0, 0.0]])
    txy = np.array([[0.0, 0.0]])
    params = es.EstimationParams(search_radius_m=1000, min_neighbours=3)
    model = _model("gaussian", 0.0, 1.0, 3000.0)
    vals = np.array([1.0, 1.0, 1.0, 1.0, 1.0])
    w = np.array([_pykrige(model, sxy, np.eye(5)[i], txy[0])[0] for i in range(5)])
    assert w[1] < 0  # screened: the library's weight is negative
    base = es.estimate_points(model, sxy, vals, txy, params).y[0]
    raised = es.estimate_points(model, sxy, vals + np.eye(5)[1] * 5, txy, params).y[0]
    assert raised >= base - 1e-12
    raw = _pykrige(model, sxy, vals + np.eye(5)[1] * 5, txy[0])[0]
    assert raw < base  # uncorrected, raising it would have lowered the estimate


def test_two_samples_on_one_point_without_nugget_do_not_fail_the_run():
    sxy = np.array([[0.0, 0.0], [0.0, 0.0], [500.0, 0.0], [0.0, 500.0], [400.0, 400.0]])
    vals = np.array([1.0, 3.0, 2.0, 2.0, 2.0])
    params = es.EstimationParams(search_radius_m=1000, min_neighbours=3)
    surf = es.estimate_points(_model("spherical", 0.0, 1.0, 2000.0), sxy, vals, np.array([[200.0, 200.0]]), params)
    assert np.isfinite(surf.y[0]) and np.isfinite(surf.var[0])
