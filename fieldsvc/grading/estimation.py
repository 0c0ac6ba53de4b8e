"""Spatial estimation: value a parcel without a sample from the samples around it (DESIGN §5).

Pure (numpy, scipy, pyproj, PyKrige; no Flask, no database). One call per analyte and county:

1. ``metric_projection`` picks the UTM zone of the county's centre, so distances are metres.
2. ``fit_model`` fits a variogram to all the county's samples of the analyte (on natural logs
   for the pack's log-normal elements) with PyKrige's least-squares fit. Below
   ``min_samples_for_kriging`` samples, or when the fit fails (an exception, a non-finite
   parameter, no spatial structure: partial sill <= 0, or a range <= 0), the model is inverse
   distance weighting and says why (``reason``).
3. ``estimate`` values each target from at most ``max_neighbours`` samples of its own land-use
   group within ``search_radius_m`` (none farther, ever); fewer than ``min_neighbours`` →
   ``not_assessed``. Kriging is ordinary kriging with the fitted variogram held fixed and a
   moving window of exactly the neighbours found: PyKrige's system (its variogram functions and
   matrix), solved here for all targets at once with numpy (``_krige_rows``; a test holds the
   estimates and variances to PyKrige's ``execute``), then Deutsch's negative-weight correction.

Log-normal elements: the estimate is ``exp(y* + σ²/2)`` (the log-normal mean: y*, σ² the kriged
log value and its kriging variance; this is the simple-kriging form of the unbiased
back-transform, the ordinary-kriging Lagrange term is not exposed by the library and is left
out), σ in mg/kg is ``estimate·sqrt(exp(σ²) − 1)``, and the bounds are ``exp(y* ± z·σ)``
(computed in log space, so a lower bound is never negative).

IDW (power 2) has no kriging variance; its σ is that of a new value predicted by a weighted mean
of independent samples: ``σ² = s² · (1 + Σw²)`` with ``s²`` the county's sample variance of the
analyte, recorded in the model. It does not depend on the neighbours' values, so with the model
held fixed raising a sample can only raise an IDW estimate and both its bounds (monotone).

Nothing here depends on input order: samples and targets are sorted by code first, and
neighbour ties go to the smaller code.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from scipy.spatial import cKDTree

from .basis import stored_rows

KRIGING, IDW = "kriging", "idw"
MEASURED, ESTIMATED, NOT_ASSESSED = "measured", "estimated", "not_assessed"
QUALIFIED, NOT_QUALIFIED, NEEDS_SAMPLING = "qualified", "not_qualified", "needs_sampling"
VARIOGRAM_MODELS = ("spherical", "exponential", "gaussian")
_FIT_SUBSAMPLE = 1200  # samples used to fit a variogram (all pairs: ~720k lags)


# --- parameters --------------------------------------------------------------------------


@dataclass(frozen=True)
class EstimationParams:
    """The pack's estimation parameters (``estimation`` block), validated by ``from_data``.

    The defaults are this design's (STANDARDS.md §8 item 5: UNCONFIRMED as standard values).
    """

    search_radius_m: float = 1500.0
    min_neighbours: int = 3
    max_neighbours: int = 12
    z: float = 1.645
    min_coverage: float = 0.6
    min_samples_for_kriging: int = 30
    log_normal: frozenset[str] = frozenset({"Cd", "Hg", "As", "Pb", "Cr", "Cu", "Zn", "Ni", "Se"})
    land_use_groups: Mapping[str, str] = field(default_factory=lambda: {
        "paddy": "paddy", "paddy_dryland_rotation": "paddy", "sediment": "paddy",
        "dryland": "dryland", "vegetable": "dryland", "orchard": "dryland", "tea": "dryland",
        "grassland": "dryland",
    })
    variogram_model: str = "spherical"
    nlags: int = 12
    samples_per_ha: float | None = None  # certifiable-area density (NY/T 1054 style), None = not set
    density_verified: bool = False

    def group(self, land_use: str) -> str:
        """The land-use group; a land use the pack does not group stands alone."""
        return self.land_use_groups.get(land_use, land_use)

    @classmethod
    def from_data(cls, data: Mapping[str, Any] | None) -> EstimationParams:
        problems = validate_params(data)
        if problems:
            raise ValueError("; ".join(problems))
        if not data:
            return cls()
        kw: dict[str, Any] = {}
        for key in ("search_radius_m", "z", "min_coverage"):
            if key in data:
                kw[key] = float(data[key])
        for key in ("min_neighbours", "max_neighbours", "min_samples_for_kriging", "nlags"):
            if key in data:
                kw[key] = int(data[key])
        if "log_normal" in data:
            kw["log_normal"] = frozenset(data["log_normal"])
        if "land_use_groups" in data:
            kw["land_use_groups"] = {lu: g for g, lus in data["land_use_groups"].items() for lu in lus}
        if "variogram_model" in data:
            kw["variogram_model"] = data["variogram_model"]
        dens = data.get("sample_density")
        if dens:
            kw["samples_per_ha"] = float(dens["samples_per_ha"])
            kw["density_verified"] = bool(dens.get("verified", False))
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        groups: dict[str, list[str]] = {}
        for lu, g in sorted(self.land_use_groups.items()):
            groups.setdefault(g, []).append(lu)
        return {
            "search_radius_m": self.search_radius_m, "min_neighbours": self.min_neighbours,
            "max_neighbours": self.max_neighbours, "z": self.z, "min_coverage": self.min_coverage,
            "min_samples_for_kriging": self.min_samples_for_kriging,
            "log_normal": sorted(self.log_normal), "land_use_groups": groups,
            "variogram_model": self.variogram_model,
            "sample_density": None if self.samples_per_ha is None else {
                "samples_per_ha": self.samples_per_ha, "verified": self.density_verified},
        }


def _number(data: Mapping, key: str, problems: list[str], lo: float, hi: float, integer: bool = False,
            where: str = "estimation") -> None:
    if key not in data:
        return
    v = data[key]
    ok = not isinstance(v, bool) and isinstance(v, (int, float)) or type(v).__name__ == "Decimal"
    if ok:
        fv = float(v)
        ok = math.isfinite(fv) and lo <= fv <= hi and (not integer or fv == int(fv))
    if not ok:
        kind = "an integer" if integer else "a number"
        problems.append(f"{where}.{key}: must be {kind} in [{lo:g}, {hi:g}]")


def validate_params(data: Any) -> list[str]:
    """Every problem with an ``estimation`` block (empty = usable; an absent block means defaults)."""
    if data is None:
        return []
    if not isinstance(data, Mapping):
        return ["estimation: must be an object"]
    problems: list[str] = []
    known = {"search_radius_m", "min_neighbours", "max_neighbours", "z", "min_coverage",
             "min_samples_for_kriging", "log_normal", "land_use_groups", "variogram_model", "nlags",
             "sample_density", "note"}
    problems.extend(f"estimation.{k}: unknown parameter" for k in sorted(set(data) - known))
    _number(data, "search_radius_m", problems, 1, 100_000)
    _number(data, "min_neighbours", problems, 2, 64, integer=True)
    _number(data, "max_neighbours", problems, 2, 64, integer=True)
    _number(data, "z", problems, 0, 5)
    _number(data, "min_coverage", problems, 0, 1)
    _number(data, "min_samples_for_kriging", problems, 3, 100_000, integer=True)
    _number(data, "nlags", problems, 4, 50, integer=True)
    if not problems and int(data.get("min_neighbours", 3)) > int(data.get("max_neighbours", 12)):
        problems.append("estimation.min_neighbours: must not exceed max_neighbours")
    ln = data.get("log_normal")
    if ln is not None and not (isinstance(ln, list) and all(isinstance(a, str) and a for a in ln)):
        problems.append("estimation.log_normal: a list of analyte keys")
    groups = data.get("land_use_groups")
    if groups is not None:
        if not isinstance(groups, Mapping) or not groups:
            problems.append("estimation.land_use_groups: an object of group → land uses")
        else:
            seen: dict[str, str] = {}
            for g, lus in groups.items():
                if not isinstance(lus, list) or not lus or not all(isinstance(lu, str) for lu in lus):
                    problems.append(f"estimation.land_use_groups.{g}: a non-empty list of land uses")
                    continue
                for lu in lus:
                    if lu in seen:
                        problems.append(f"estimation.land_use_groups: {lu!r} is in both {seen[lu]!r} and {g!r}")
                    seen[lu] = g
    vm = data.get("variogram_model")
    if vm is not None and vm not in VARIOGRAM_MODELS:
        problems.append(f"estimation.variogram_model: one of {', '.join(VARIOGRAM_MODELS)}")
    dens = data.get("sample_density")
    if dens is not None:
        if not isinstance(dens, Mapping) or "samples_per_ha" not in dens:
            problems.append("estimation.sample_density: needs samples_per_ha")
        else:
            _number(dens, "samples_per_ha", problems, 1e-6, 1000, where="estimation.sample_density")
            if not isinstance(dens.get("verified"), bool):
                problems.append("estimation.sample_density.verified: true or false (NY/T 1054 density "
                                "is UNCONFIRMED: false until checked)")
    return problems


_Coords = Sequence[float] | np.ndarray


# --- projection ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Projection:
    """A metric projection for one county (UTM zone of its centre)."""

    epsg: int
    _fwd: Any = field(repr=False, compare=False)
    _inv: Any = field(repr=False, compare=False)

    def to_xy(self, lon: _Coords, lat: _Coords) -> tuple[np.ndarray, np.ndarray]:
        x, y = self._fwd.transform(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
        return np.asarray(x, dtype=float), np.asarray(y, dtype=float)

    def to_lonlat(self, x: _Coords, y: _Coords) -> tuple[np.ndarray, np.ndarray]:
        lon, lat = self._inv.transform(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
        return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


def metric_projection(lons: Iterable[float], lats: Iterable[float]) -> Projection:
    """The WGS 84 UTM zone of the median point (a county spans well under a zone's 6°)."""

    lon = float(np.median(lons if isinstance(lons, np.ndarray) else np.fromiter(lons, float)))
    lat = float(np.median(lats if isinstance(lats, np.ndarray) else np.fromiter(lats, float)))
    zone = min(60, max(1, int((lon + 180) // 6) + 1))
    return projection_of((32600 if lat >= 0 else 32700) + zone)


def projection_of(epsg: int) -> Projection:
    """The projection with this EPSG code (a re-grade uses the one its county run chose)."""
    from pyproj import Transformer

    fwd = Transformer.from_crs(4326, epsg, always_xy=True)
    inv = Transformer.from_crs(epsg, 4326, always_xy=True)
    return Projection(epsg, fwd, inv)


# --- inputs and outputs ---------------------------------------------------------------------


@dataclass(frozen=True)
class Obs:
    """One sample's value of one analyte at a projected point; ``exceeds``: over its own limit."""

    code: str
    x: float
    y: float
    land_use: str
    value: float
    exceeds: bool = False


@dataclass(frozen=True)
class Target:
    code: str
    x: float
    y: float
    land_use: str


@dataclass(frozen=True)
class Model:
    """How an analyte is interpolated in one county (recorded with the run)."""

    analyte: str
    method: str  # kriging | idw
    log: bool
    n_samples: int
    reason: str | None = None  # why IDW: too_few_samples | fit_failed: ... | no_spatial_structure
    variogram: Mapping[str, Any] | None = None  # {model, nugget, sill, range_m} (log units when log)
    variance: float = 0.0  # the county's sample variance (interpolation scale): IDW's σ

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Model:
        """A model as a run recorded it (``to_dict``)."""
        return cls(d["analyte"], d["method"], bool(d["log"]), int(d["n_samples"]), d.get("reason"),
                   dict(d["variogram"]) if d.get("variogram") else None, float(d.get("variance") or 0.0))

    def to_dict(self) -> dict[str, Any]:
        return {"analyte": self.analyte, "method": self.method, "log": self.log,
                "n_samples": self.n_samples, "reason": self.reason, "variance": self.variance,
                "variogram": dict(self.variogram) if self.variogram else None}


@dataclass(frozen=True)
class Neighbour:
    code: str
    distance_m: float
    value: float
    exceeds: bool


@dataclass(frozen=True)
class Estimate:
    target: str
    basis: str  # estimated | not_assessed
    method: str | None = None
    value: float | None = None
    sigma: float | None = None
    lower: float | None = None
    upper: float | None = None
    neighbours: tuple[Neighbour, ...] = ()
    reason: str | None = None  # not_assessed: too_few_neighbours



def _sig(x: float | None, digits: int = 4) -> float | None:
    """Round for display to ``digits`` significant figures (no 12-digit floats in explanations)."""
    if x is None or not math.isfinite(x) or x == 0:
        return x
    return float(f"{x:.{digits}g}")


def _transform(values: np.ndarray, log: bool) -> np.ndarray:
    if not log:
        return values.astype(float)
    pos = values[values > 0]
    floor = float(pos.min()) / 2 if pos.size else 1e-6  # a measured 0 on a log scale: half the smallest
    return np.log(np.maximum(values, floor))


def _sorted_obs(obs: Iterable[Obs]) -> list[Obs]:
    return sorted(obs, key=lambda o: o.code)


def fit_model(analyte: str, obs: Iterable[Obs], params: EstimationParams) -> Model:
    """Fit the county's variogram for one analyte (all land-use groups pooled)."""
    obs = _sorted_obs(obs)
    log = analyte in params.log_normal
    n = len(obs)
    vs = _transform(np.array([o.value for o in obs], dtype=float), log)
    s2 = float(np.var(vs, ddof=1)) if n > 1 else 0.0
    if n < params.min_samples_for_kriging:
        return Model(analyte, IDW, log, n, reason="too_few_samples", variance=s2)
    xs = np.array([o.x for o in obs])
    ys = np.array([o.y for o in obs])
    if n > _FIT_SUBSAMPLE:  # deterministic: every k-th sample in code order
        pick = np.linspace(0, n - 1, _FIT_SUBSAMPLE).round().astype(int)
        xs, ys, vs = xs[pick], ys[pick], vs[pick]
    if float(np.ptp(vs)) == 0.0:
        return Model(analyte, IDW, log, n, reason="no_spatial_structure: every value is equal", variance=s2)
    try:
        from pykrige.ok import OrdinaryKriging

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ok = OrdinaryKriging(xs, ys, vs, variogram_model=params.variogram_model, nlags=params.nlags)
        psill, rng, nugget = (float(p) for p in ok.variogram_model_parameters)
    except Exception as exc:  # noqa: BLE001 - any library failure is a failed fit, reported
        return Model(analyte, IDW, log, n, reason=f"fit_failed: {type(exc).__name__}", variance=s2)
    if not all(math.isfinite(p) for p in (psill, rng, nugget)) or rng <= 0 or nugget < 0:
        return Model(analyte, IDW, log, n, reason="fit_failed: parameters out of range", variance=s2)
    if psill <= 1e-12 * max(1.0, abs(nugget)):
        return Model(analyte, IDW, log, n, reason="no_spatial_structure: pure nugget", variance=s2)
    vario = {"model": params.variogram_model, "nugget": nugget, "sill": psill + nugget, "range_m": rng}
    return Model(analyte, KRIGING, log, n, variogram=vario, variance=s2)


def _pykrige_params(model: Model) -> list[float]:
    """As PyKrige takes a list for these models: [full sill, range, nugget]."""
    v = model.variogram or {}
    return [v["sill"], v["range_m"], v["nugget"]]


def _function_params(model: Model) -> list[float]:
    """As the variogram functions take them: [partial sill, range, nugget]."""
    v = model.variogram or {}
    return [v["sill"] - v["nugget"], v["range_m"], v["nugget"]]


# --- estimation -----------------------------------------------------------------------------


def estimate(model: Model, obs: Iterable[Obs], targets: Iterable[Target], params: EstimationParams,
             ) -> dict[str, Estimate]:
    """Every target's estimate (or ``not_assessed``), by target code."""
    obs = _sorted_obs(obs)
    targets = sorted(targets, key=lambda t: t.code)
    out: dict[str, Estimate] = {}
    by_group: dict[str, list[Obs]] = {}
    for o in obs:
        by_group.setdefault(params.group(o.land_use), []).append(o)
    tgroups: dict[str, list[Target]] = {}
    for t in targets:
        tgroups.setdefault(params.group(t.land_use), []).append(t)
    for group, tlist in tgroups.items():
        out.update(_estimate_group(model, by_group.get(group, []), tlist, params))
    return out


def _neighbours(sxy: np.ndarray, txy: np.ndarray, params: EstimationParams,
                tree: cKDTree | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per target: indices (−1 = none) and distances (inf) of the nearest samples within the radius
    (``tree``: the samples' tree, when the caller keeps one).

    Ties in distance go to the smaller index (samples are in code order).
    """
    k = min(params.max_neighbours, len(sxy))
    if k == 0:
        return np.full((len(txy), 0), -1), np.full((len(txy), 0), np.inf)
    tree = tree if tree is not None else cKDTree(sxy)
    # ask for a few extra to break ties by index, then keep k
    kk = min(len(sxy), k + 4)
    d, idx = tree.query(txy, k=kk, distance_upper_bound=params.search_radius_m)
    d = np.atleast_2d(d).reshape(len(txy), kk)
    idx = np.atleast_2d(idx).reshape(len(txy), kk)
    idx = np.where(np.isinf(d), len(sxy) + 1, idx)
    order = np.lexsort((idx, np.round(d, 6)), axis=1)
    d = np.take_along_axis(d, order, axis=1)[:, :k]
    idx = np.take_along_axis(idx, order, axis=1)[:, :k]
    idx = np.where(np.isinf(d), -1, idx)
    return idx, d


@dataclass(frozen=True)
class Surface:
    """Estimates at many points as arrays (for grids and whole counties): the interpolation-scale
    estimate ``y`` and variance ``var`` (NaN where not assessed), neighbour ``count``, and the
    value, σ and bounds on the analyte's own scale."""

    y: np.ndarray
    var: np.ndarray
    count: np.ndarray
    idx: np.ndarray
    dist: np.ndarray
    value: np.ndarray
    sigma: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


def estimate_points(model: Model, sxy: np.ndarray, raw: np.ndarray, txy: np.ndarray,
                    params: EstimationParams,
                    neighbours: tuple[np.ndarray, np.ndarray] | None = None,
                    windows: dict[int, Any] | None = None) -> Surface:
    """Vectorised estimation at ``txy`` from samples ``sxy``/``raw`` of one land-use group
    (samples in code order; the caller groups by land use). ``neighbours``: ``_neighbours`` of
    these very points, when the caller has them (the analytes of a county share their samples);
    ``windows``: a dict kept with those neighbours, where kriging keeps the windows' geometry
    for the next analyte of the same search."""
    n_t = len(txy)
    if len(sxy) == 0:
        nan = np.full(n_t, np.nan)
        return Surface(nan, nan, np.zeros(n_t, int), np.full((n_t, 0), -1), np.full((n_t, 0), np.inf),
                       nan, nan, nan, nan)
    vals = _transform(raw, model.log)
    idx, dist = neighbours if neighbours is not None else _neighbours(sxy, txy, params)
    counts = (idx >= 0).sum(axis=1)
    est = np.full(n_t, np.nan)
    var = np.full(n_t, np.nan)
    ok_rows = np.nonzero(counts >= params.min_neighbours)[0]
    if model.method == KRIGING:
        _krige_rows(model, sxy, vals, idx, dist, counts, ok_rows, est, var, windows)
    else:
        _idw_rows(vals, idx, dist, counts, ok_rows, model.variance, est, var)
    var = np.maximum(var, 0.0)
    s = np.sqrt(var)
    if model.log:
        value = np.exp(est + var / 2)
        sigma = value * np.sqrt(np.expm1(var))
        lower, upper = np.exp(est - params.z * s), np.exp(est + params.z * s)
    else:
        value, sigma, lower, upper = est, s, est - params.z * s, est + params.z * s
    return Surface(est, var, counts, idx, dist, value, sigma, lower, upper)


def _estimate_group(model: Model, obs: list[Obs], targets: list[Target], params: EstimationParams,
                    ) -> dict[str, Estimate]:
    out: dict[str, Estimate] = {}
    txy = np.array([[t.x, t.y] for t in targets], dtype=float).reshape(-1, 2)
    if not obs:
        return {t.code: Estimate(t.code, NOT_ASSESSED, reason="too_few_neighbours") for t in targets}
    sxy = np.array([[o.x, o.y] for o in obs], dtype=float)
    raw = np.array([o.value for o in obs], dtype=float)
    surf = estimate_points(model, sxy, raw, txy, params)
    for i, t in enumerate(targets):
        n = int(surf.count[i])
        nbs = tuple(Neighbour(obs[j].code, float(surf.dist[i, c]), float(raw[j]), obs[j].exceeds)
                    for c, j in enumerate(surf.idx[i, :n]))
        if n < params.min_neighbours or not math.isfinite(surf.y[i]):
            out[t.code] = Estimate(t.code, NOT_ASSESSED, neighbours=nbs, reason="too_few_neighbours")
            continue
        out[t.code] = Estimate(t.code, ESTIMATED, model.method, float(surf.value[i]), float(surf.sigma[i]),
                               float(surf.lower[i]), float(surf.upper[i]), nbs)
    return out


# rows per batched solve: (rows, n+1, n+1) float64 is ~11 MB at n = 12 (under glibc's 32 MB mmap
# ceiling, so the chunks' arrays reuse heap memory instead of faulting fresh pages in every time)
_KRIGE_CHUNK = 8192


@dataclass
class _Windows:
    """The moving windows of one neighbour search with ``n`` neighbours, shared by every analyte
    that reuses the search (only the variogram differs between them): the rows, each row's
    neighbours in index order with their distances to the target, and the distinct neighbour
    sets with their sample-to-sample distances (rows with one set share one left-hand matrix).
    Rows are ordered by set, so a chunk of rows needs a contiguous run of sets."""

    members: np.ndarray  # (m,) the target rows asked for, as asked
    rows: np.ndarray  # (m,) target rows, by set
    nb: np.ndarray  # (m, n) neighbour indices, ascending
    d0: np.ndarray  # (m, n) target-to-neighbour distances, in ``nb``'s order
    set_of: np.ndarray  # (m,) the row's distinct set
    dd: np.ndarray  # (sets, n, n) sample-to-sample distances of each distinct set


def _windows(sxy: np.ndarray, idx: np.ndarray, dist: np.ndarray, rows: np.ndarray, n: int) -> _Windows:
    order = np.argsort(idx[rows, :n], axis=1, kind="stable")
    nb = np.take_along_axis(idx[rows, :n], order, axis=1)
    d0 = np.take_along_axis(dist[rows, :n], order, axis=1)
    if len(rows):
        raw = np.ascontiguousarray(nb.astype(np.int64))
        keys = raw.view(np.dtype((np.void, raw.dtype.itemsize * n))).ravel()
        _, first, set_of = np.unique(keys, return_index=True, return_inverse=True)
        sets = nb[first]
    else:
        set_of, sets = np.zeros(0, np.int64), np.zeros((0, n), np.int64)
    set_of = set_of.reshape(-1)
    by_set = np.argsort(set_of, kind="stable")
    px, py = sxy[sets, 0], sxy[sets, 1]
    dd = np.hypot(px[:, :, None] - px[:, None, :], py[:, :, None] - py[:, None, :])
    return _Windows(rows, rows[by_set], nb[by_set], d0[by_set], set_of[by_set], dd)


def _krige_rows(model: Model, sxy: np.ndarray, vals: np.ndarray, idx: np.ndarray, dist: np.ndarray,
                counts: np.ndarray, rows: np.ndarray, est: np.ndarray, var: np.ndarray,
                windows: dict[int, _Windows] | None = None) -> None:
    """Ordinary kriging with the model's variogram, window = exactly each row's neighbours.

    The system is PyKrige's (its variogram function, its matrix: ``-γ`` between samples with a
    zero diagonal, bordered by ones; right-hand side ``-γ`` to the target, zero at a sample on
    the target), solved here for all rows at once (numpy's batched LAPACK solve, in chunks)
    instead of by the library's moving window: the library builds an object and loops in
    Python per window, and the weights are needed anyway for Deutsch's correction
    (``_correct_negative_weights``). Estimate ``Σ wᵢzᵢ``, variance ``Σ wᵢγᵢ₀ − μ`` (PyKrige's
    ``-x·b``); a test holds both to PyKrige's ``execute``. ``windows`` keeps each neighbour
    count's geometry for the analytes that share the search.
    """
    from pykrige.ok import OrdinaryKriging

    gamma = OrdinaryKriging.variogram_dict[model.variogram["model"]]
    vp = _function_params(model)
    windows = {} if windows is None else windows
    for n in sorted(set(counts[rows].tolist())):
        members = rows[counts[rows] == n]
        if n == 1:  # one neighbour: its value, the sill
            j = idx[members, 0]
            est[members], var[members] = vals[j], model.variogram["sill"]
            continue
        w_ = windows.get(n)
        if w_ is None or not np.array_equal(w_.members, members):
            w_ = windows[n] = _windows(sxy, idx, dist, members, n)
        diag = np.arange(n)
        for start in range(0, len(members), _KRIGE_CHUNK):
            part = slice(start, start + _KRIGE_CHUNK)
            r, nb, d0, set_of = w_.rows[part], w_.nb[part], w_.d0[part], w_.set_of[part]
            first, last = int(set_of[0]), int(set_of[-1]) + 1  # the chunk's sets (rows are by set)
            lhs = np.ones((last - first, n + 1, n + 1))
            lhs[:, :n, :n] = -gamma(vp, w_.dd[first:last])
            lhs[:, diag, diag] = 0.0
            lhs[:, n, n] = 0.0
            b = np.ones((len(r), n + 1))
            b[:, :n] = -gamma(vp, d0)
            b[:, :n][d0 <= 1e-10] = 0.0  # PyKrige's eps: a sample on the target keeps its value
            x = _solve_by_set(lhs, set_of - first, b)
            w = x[:, :n]
            z = vals[nb]
            est[r] = (w * z).sum(axis=1)
            var[r] = -(x * b).sum(axis=1)
            _correct_negative_weights(w, z, r, est)


def _solve_by_set(lhs: np.ndarray, set_of: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``solve(lhs[set_of[i]], b[i])`` for every row i, each set's system factorised once for
    all its rows (``set_of`` ascending: a set's rows are contiguous).

    Why: neighbouring parcels share their neighbours, so a chunk has about a third as many
    distinct systems as rows, and a 13 x 13 solve costs its LAPACK call more than its
    arithmetic. Sets with the same number of rows go in one batched call, their rows as the
    columns of the right-hand side."""
    per_set = np.bincount(set_of, minlength=len(lhs))
    start = np.concatenate(([0], np.cumsum(per_set)[:-1]))
    x = np.empty_like(b)
    for m in np.unique(per_set[per_set > 0]).tolist():
        sets = np.nonzero(per_set == m)[0]
        rows = start[sets][:, None] + np.arange(m)  # (sets, m): each set's rows
        try:
            x[rows] = np.linalg.solve(lhs[sets], b[rows].transpose(0, 2, 1)).transpose(0, 2, 1)
        except np.linalg.LinAlgError:  # a singular set among them: row by row, as ``_solve`` does
            flat = rows.ravel()
            x[flat] = _solve(lhs[np.repeat(sets, m)], b[flat])
    return x


def _solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``solve(a[i], b[i])`` for every i; a singular system (two samples on one point with no
    nugget) gets the least-squares solution instead of failing the county run."""
    try:
        return np.linalg.solve(a, b[..., None])[..., 0]
    except np.linalg.LinAlgError:
        out = np.empty_like(b)
        for i in range(len(b)):
            try:
                out[i] = np.linalg.solve(a[i], b[i])
            except np.linalg.LinAlgError:
                out[i] = np.linalg.lstsq(a[i], b[i], rcond=None)[0]
        return out


def _correct_negative_weights(w: np.ndarray, z: np.ndarray, rows: np.ndarray, est: np.ndarray) -> None:
    """Deutsch's negative-weight correction (Computers & Geosciences 22(7), 1996) where needed.

    Ordinary kriging gives a screened sample a negative weight, so raising that sample would
    lower the estimate and could turn a parcel qualified: not acceptable for a precautionary
    verdict. In rows with a negative weight (``w``, the rows' kriging weights; ``z`` their
    neighbours' values) those weights are set to zero, the rest rescaled to sum to one and the
    estimate replaced. The kriging variance is the system's (the correction changes the estimate
    by little, the variance by less).
    """
    neg = (w < -1e-12).any(axis=1)
    if not neg.any():
        return
    wp = np.clip(w[neg], 0.0, None)
    wp /= wp.sum(axis=1, keepdims=True)
    est[rows[neg]] = (wp * z[neg]).sum(axis=1)


def _idw_rows(vals: np.ndarray, idx: np.ndarray, dist: np.ndarray, counts: np.ndarray, rows: np.ndarray,
              s2: float, est: np.ndarray, var: np.ndarray) -> None:
    for r in rows.tolist():
        n = int(counts[r])
        j, d = idx[r, :n], dist[r, :n]
        v = vals[j]
        if np.any(d <= 1e-9):
            w = (d <= 1e-9).astype(float)
        else:
            w = 1.0 / d ** 2
        w = w / w.sum()
        est[r] = float(np.dot(w, v))
        var[r] = s2 * (1.0 + float(np.dot(w, w)))


# --- cross-validation ----------------------------------------------------------------------


def cross_validate(model: Model, obs: Iterable[Obs], params: EstimationParams, z: float = 1.959964,
                   max_points: int = 400) -> dict[str, Any]:
    """Leave-one-out at up to ``max_points`` samples (every k-th in code order): each is estimated
    from its own neighbours without itself. Errors and the standardised error are in the
    interpolation scale (logs for log-normal elements); ``coverage_95`` is the share of samples
    inside their two-sided 95 % interval."""
    obs = _sorted_obs(obs)
    pick = (np.linspace(0, len(obs) - 1, min(max_points, len(obs))).round().astype(int)
            if obs else np.array([], int))
    errs, std, inside = [], [], 0
    for i in sorted(set(pick.tolist())):
        me = obs[i]
        rest = [o for j, o in enumerate(obs) if j != i]
        e = estimate(model, rest, [Target(me.code + "\x00cv", me.x, me.y, me.land_use)], params)
        got = next(iter(e.values()))
        if got.basis != ESTIMATED:
            continue
        if model.log:
            y_true = math.log(max(me.value, 1e-12))
            var = math.log1p((got.sigma / got.value) ** 2) if got.value else 0.0
            y_hat = math.log(got.value) - var / 2
        else:
            y_true, y_hat, var = me.value, got.value, got.sigma ** 2
        s = math.sqrt(var)
        errs.append(y_hat - y_true)
        if s > 0:
            std.append((y_hat - y_true) / s)
        inside += abs(y_hat - y_true) <= z * s
    n = len(errs)
    if not n:
        return {"n": 0, "mean_error": None, "rmse": None, "mean_standardised_error": None,
                "coverage_95": None}
    return {"n": n, "mean_error": _sig(float(np.mean(errs))),
            "rmse": _sig(float(math.sqrt(np.mean(np.square(errs))))),
            "mean_standardised_error": _sig(float(np.mean(std))) if std else None,
            "coverage_95": round(inside / n, 4)}


# --- verdicts ------------------------------------------------------------------------------

_RANK = {QUALIFIED: 0, NOT_ASSESSED: 1, NEEDS_SAMPLING: 2, NOT_QUALIFIED: 3}


def judge(lower: np.ndarray, upper: np.ndarray, hot: np.ndarray, strict: np.ndarray,
          loose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each estimated analyte's verdict and reason, as indices into ``ROW_VERDICTS`` and
    ``ROW_REASONS`` (the one statement of the rule; not-assessed rows are decided before it).

    ``strict``/``loose``: the lowest and highest limit over the estimated pH interval (equal
    when the pH band is certain). Within only when the upper bound is within the strictest limit
    and no neighbour exceeds its own limit (``hot``: precaution); beyond when the lower bound is
    beyond the loosest; else needs sampling.
    """
    beyond = lower > loose
    within = (upper <= strict) & ~hot
    verdict = np.where(beyond, 2, np.where(within, 0, 1))
    why = np.where(beyond, 0, np.where(within, 1, np.where(hot, 2, 3)))
    return verdict, why


def combine(verdicts: Iterable[str]) -> str:
    """A parcel's verdict from its analytes': the worst (not qualified > needs sampling > not
    assessed > qualified); an empty set is not assessed."""
    worst = None
    for v in verdicts:
        if worst is None or _RANK[v] > _RANK[worst]:
            worst = v
    return worst or NOT_ASSESSED


def limit_range(table: Sequence[tuple[float | None, float | None, float]], ph_lo: float, ph_hi: float,
                ) -> tuple[float, float]:
    """(strictest, loosest) limit over pH in [ph_lo, ph_hi]; ``table`` rows are (lo, hi, limit)
    bands with None for open ends (edges between bands count for both)."""
    hits = [lim for lo, hi, lim in table
            if (lo is None or ph_hi >= lo) and (hi is None or ph_lo <= hi)]
    if not hits:
        raise ValueError("no band covers the pH interval")
    return min(hits), max(hits)


# --- a whole assessment, for one pack limit table ----------------------------------------------


@dataclass(frozen=True)
class Sample:
    """A sample for ``assess``: its parcel, land use, point (projected) and values by analyte."""

    code: str
    parcel: str | None
    land_use: str
    x: float
    y: float
    values: Mapping[str, float]


@dataclass(frozen=True)
class Assessment:
    """A parcel's verdict and its analytes' rows. An estimated analyte's row names its neighbour
    set (``{"samples": [codes], "distance_m": [m]}``, nearest first; the same object for the
    analytes that share it) and ``exceeding``: those of them over their own limit (precaution).
    ``ph_neighbours``: the set the parcel's pH was estimated from (unsampled parcels)."""

    parcel: str
    basis: str
    verdict: str
    analytes: Mapping[str, Mapping[str, Any]]
    ph_neighbours: Mapping[str, list] | None = None


LimitFn = Callable[[str, str, float, float], tuple[float, float]]  # (analyte, land_use, ph_lo, ph_hi)


def assess(samples: Iterable[Sample], parcels: Iterable[Target], analytes: Sequence[str],
           limit: LimitFn, params: EstimationParams,
           models: Mapping[str, Model] | None = None) -> tuple[dict[str, Assessment], dict[str, Model]]:
    """Verdict per parcel: measured from its own samples (worst sample per analyte, judged at its
    own pH), else estimated (pH estimated too: its interval picks the limits), else not assessed.

    ``models`` holds fixed variograms (an incremental re-grade uses the run's); missing ones are
    fitted here. Returns the assessments and the models used (``assess_arrays`` keeps the
    unsampled parcels' rows as arrays instead of an ``Assessment`` each).
    """
    county = assess_arrays(samples, parcels, analytes, limit, params, models)
    return county.assessments(), county.models


def assess_arrays(samples: Iterable[Sample], parcels: Iterable[Target], analytes: Sequence[str],
                  limit: LimitFn, params: EstimationParams,
                  models: Mapping[str, Model] | None = None) -> CountyAssessment:
    """``assess``, with the unsampled parcels' analyte rows left as arrays (``CountyAssessment``):
    a county run stores each estimated parcel's explanation from them (``estimated.stored``)
    without making its rows, neighbour sets and assessment as Python objects first."""
    return Survey(samples, analytes, limit, params, models).assess(parcels)


class _Group:
    """One land-use group's samples holding one analyte (code order), as the searches use them;
    ``key`` names the sample set, so analytes measured on the same samples share a search and a
    tree (``trees``, shared by the groups of one ``Survey``)."""

    __slots__ = ("obs", "codes", "key", "sxy", "raw", "exceeds", "_trees", "_texts")

    def __init__(self, group: str, obs: list[Obs], trees: dict[tuple, cKDTree]) -> None:
        self.obs = obs
        self.codes = [o.code for o in obs]
        self.key = (group, tuple(self.codes))
        self.sxy = np.array([[o.x, o.y] for o in obs], dtype=float)
        self.raw = np.array([o.value for o in obs], dtype=float)
        self.exceeds = np.array([o.exceeds for o in obs] + [False], dtype=bool)  # index -1: no neighbour
        self._trees = trees
        self._texts: np.ndarray | None = None

    def code_texts(self) -> np.ndarray:
        """The codes as JSON text (object array): written into every neighbour set, encoded once
        per survey instead of once per chunk of parcels."""
        if self._texts is None:
            self._texts = np.array([orjson.dumps(c).decode() for c in self.codes], dtype=object)
        return self._texts

    def tree(self) -> cKDTree:
        got = self._trees.get(self.key)
        if got is None:
            got = self._trees[self.key] = cKDTree(self.sxy)
        return got


class Survey:
    """The samples' half of ``assess``, made once: the samples by parcel, each analyte's
    observations (whether each exceeds its own limit at its own pH), the models (fitted here
    where not given) and each analyte's land-use groups with their search trees. ``assess``
    values any set of parcels against it, so a county run can value its parcels block by block
    (in worker processes) with the result a single call over the county gives (the estimate of a
    parcel depends only on the samples and the models)."""

    def __init__(self, samples: Iterable[Sample], analytes: Sequence[str], limit: LimitFn,
                 params: EstimationParams, models: Mapping[str, Model] | None = None) -> None:
        self.samples = sorted(samples, key=lambda s: s.code)
        self.analytes, self.limit, self.params = list(analytes), limit, params
        self.on_parcel: dict[str, list[Sample]] = {}
        for s in self.samples:
            if s.parcel is not None:
                self.on_parcel.setdefault(s.parcel, []).append(s)
        self.models = dict(models or {})
        self.groups: dict[str, dict[str, _Group]] = {}
        trees: dict[tuple, cKDTree] = {}
        for a in ("pH", *[a for a in analytes if a != "pH"]):
            obs = self._obs_for(a)
            if a not in self.models:
                self.models[a] = fit_model(a, obs, params)
            by_group: dict[str, list[Obs]] = {}
            for o in _sorted_obs(obs):
                by_group.setdefault(params.group(o.land_use), []).append(o)
            self.groups[a] = {group: _Group(group, gobs, trees) for group, gobs in by_group.items()}

    def _obs_for(self, analyte: str) -> list[Obs]:
        out = []
        limit = self.limit
        for s in self.samples:
            if analyte not in s.values:
                continue
            ex = False
            if analyte != "pH" and "pH" in s.values:
                ex = s.values[analyte] > limit(analyte, s.land_use, s.values["pH"], s.values["pH"])[0]
            out.append(Obs(s.code, s.x, s.y, s.land_use, float(s.values[analyte]), ex))
        return out

    def assess(self, parcels: Iterable[Target]) -> CountyAssessment:
        """These parcels' assessments: measured from their own samples, else estimated as arrays."""
        analytes, limit, models, on_parcel = self.analytes, self.limit, self.models, self.on_parcel
        parcels = sorted(parcels, key=lambda p: p.code)
        unsampled = [p for p in parcels if p.code not in on_parcel]
        fields: dict[str, _Field] = {}
        found: dict[Any, Any] = {}
        for a in ("pH", *[a for a in analytes if a != "pH"]):
            fields[a] = _field(models[a], self.groups[a], unsampled, self.params, found)
        ph = fields["pH"]
        rows = {a: _analyte_rows(a, models[a].method, fields[a], ph, unsampled, limit)
                for a in analytes if a != "pH"}
        measured: dict[str, Assessment] = {}
        for p in parcels:
            if p.code in on_parcel:
                measured[p.code] = self._measured(p, on_parcel[p.code])
        return CountyAssessment(parcels, measured, unsampled, rows, ph, _sig_list(ph.value), _sig_list(ph.sigma),
                                dict(models))

    def _measured(self, p: Target, samples: list[Sample]) -> Assessment:
        """A sampled parcel: per analyte its worst sample, judged at that sample's own pH."""
        mrows: dict[str, dict[str, Any]] = {}
        for a in self.analytes:
            worst = None
            for s in samples:
                if a not in s.values or "pH" not in s.values:
                    continue
                lim = self.limit(a, p.land_use, s.values["pH"], s.values["pH"])[0]
                row = {"basis": MEASURED, "value": s.values[a], "limit": lim, "sample": s.code,
                       "verdict": NOT_QUALIFIED if s.values[a] > lim else QUALIFIED}
                if worst is None or s.values[a] / lim > worst["value"] / worst["limit"]:
                    worst = row
            mrows[a] = worst or {"basis": NOT_ASSESSED, "verdict": NOT_ASSESSED, "reason": "no_ph_or_value"}
        return Assessment(p.code, MEASURED, combine(r["verdict"] for r in mrows.values()), mrows)


# --- the vectorised half of ``assess`` ----------------------------------------------------------
#
# A county run values ~10^6 parcels × analytes: the estimates, bounds, limits and verdicts are
# arrays, and so are the parcels' neighbour sets (an index into one neighbour search each). Each
# unsampled parcel's rows are written once, as JSON text straight from the arrays
# (``CountyAssessment.texts``): a county run stores that text (``estimated.stored``), and
# ``assess`` gives the same rows parsed back (``CountyAssessment.assessments``).


class Search:
    """One neighbour search (a land-use group's samples holding an analyte, for that group's
    unsampled parcels): per target the indices of its neighbours among ``codes`` (−1: none) and
    their distances in whole metres, nearest first. The analytes measured on the same samples
    share one search."""

    __slots__ = ("codes", "code_texts", "idx", "metres", "counts")

    def __init__(self, codes: list[str], code_texts: np.ndarray, idx: np.ndarray, dist: np.ndarray) -> None:
        self.codes, self.code_texts = codes, code_texts
        self.idx = idx
        self.metres = np.round(np.where(np.isfinite(dist), dist, 0.0)).astype(np.int64)
        self.counts = (idx >= 0).sum(axis=1)

    def neighbour_set(self, j: int) -> dict[str, list]:
        """Target ``j``'s set: ``{"samples": [codes], "distance_m": [whole metres]}``."""
        n = int(self.counts[j])
        return {"samples": [self.codes[k] for k in self.idx[j, :n].tolist()],
                "distance_m": self.metres[j, :n].tolist()}


@dataclass(frozen=True)
class _Field:
    """One analyte's estimates at the unsampled parcels (aligned with them, in code order)."""

    ok: np.ndarray  # estimated (enough neighbours and a finite estimate)
    value: np.ndarray
    sigma: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    hot: np.ndarray  # a neighbour exceeds its own limit
    # per target its neighbour set: ``searches[search[i]]``, row ``row[i]`` (search −1: no samples
    # in its group, an empty set); ``searches`` is shared by every analyte of one ``assess``
    search: np.ndarray
    row: np.ndarray
    searches: list[Search]
    exceeding: dict[int, str]  # the neighbours over their own limit, where any are: their codes as a JSON array

    def neighbour_set(self, i: int) -> dict[str, list]:
        s = int(self.search[i])
        return {"samples": [], "distance_m": []} if s < 0 else self.searches[s].neighbour_set(int(self.row[i]))


def _field(model: Model, groups: Mapping[str, _Group], targets: list[Target], params: EstimationParams,
           found: dict[Any, Any] | None = None) -> _Field:
    """``estimate`` as arrays: each land-use group's parcels from that group's samples.

    ``found`` keeps each group's neighbour search by its samples' codes: an analyte measured on
    the same samples as one before it reuses the search (the targets are the same); the
    searches in order (``"searches"``) and the targets by group (``"targets"``)."""
    if found is None:
        found = {}
    searches: list[Search] = found.setdefault("searches", [])
    n_t = len(targets)
    value, sigma, lower, upper = (np.full(n_t, np.nan) for _ in range(4))
    ok = np.zeros(n_t, bool)
    hot = np.zeros(n_t, bool)
    search = np.full(n_t, -1, np.int64)
    row = np.zeros(n_t, np.int64)
    exceeding: dict[int, list[str]] = {}
    kept = found.get("targets")
    if kept is None or kept[0] is not targets:  # the targets by group: the same for every analyte
        tgroups: dict[str, list[int]] = {}
        for i, t in enumerate(targets):
            tgroups.setdefault(params.group(t.land_use), []).append(i)
        kept = (targets, {group: (members, np.array(members),
                                  np.array([[targets[i].x, targets[i].y] for i in members], dtype=float).reshape(-1, 2))
                          for group, members in tgroups.items()})
        found["targets"] = kept
    for group, (members, rows, txy) in kept[1].items():
        g = groups.get(group)
        if g is None:
            continue  # not assessed, no neighbours
        near = found.get(g.key)
        if near is None:
            idx, dist = _neighbours(g.sxy, txy, params, g.tree())
            searches.append(Search(g.codes, g.code_texts(), idx, dist))
            near = found[g.key] = (idx, dist, len(searches) - 1, {})
        surf = estimate_points(model, g.sxy, g.raw, txy, params, neighbours=(near[0], near[1]), windows=near[3])
        good = (surf.count >= params.min_neighbours) & np.isfinite(surf.y)
        ok[rows] = good
        for out, got in ((value, surf.value), (sigma, surf.sigma), (lower, surf.lower), (upper, surf.upper)):
            out[rows] = np.where(good, got, np.nan)
        group_hot = g.exceeds[surf.idx].any(axis=1) if surf.idx.shape[1] else np.zeros(len(members), bool)
        hot[rows] = group_hot
        hot_j = np.nonzero(group_hot)[0]
        hot_idx = surf.idx[hot_j]
        picked = np.where(g.exceeds[hot_idx] & (hot_idx >= 0), hot_idx, -1)
        for j, text in zip(hot_j.tolist(), _code_lists(picked, g.code_texts()), strict=True):
            exceeding[members[j]] = text
        search[rows] = near[2]
        row[rows] = np.arange(len(members))
    return _Field(ok, value, sigma, lower, upper, hot, search, row, searches, exceeding)


def _code_lists(picked: np.ndarray, code_texts: np.ndarray) -> list[str]:
    """Per row of ``picked`` (sample indices, −1 skipped, in neighbour order) those samples'
    codes as a JSON array, from the codes' text made once per survey."""
    return ["[" + ",".join([code_texts[k] for k in row if k >= 0]) + "]" for row in picked.tolist()]


def _sig_list(x: np.ndarray, digits: int = 4) -> list[float]:
    """``[_sig(v) for v in x]``, vectorised, with exactly ``_sig``'s results.

    ``float(f"{v:.4g}")`` is the double nearest the decimal ``m·10^(e-3)``, m the 4-digit mantissa
    rounded half to even. Here ``m = rint(v·10^k)`` and the result ``m / 10^k`` (or ``m·10^-k``):
    one correctly rounded IEEE operation on exact operands, so the same double, wherever ``v·10^k``
    is not within rounding error of a half (those, and anything outside the safe range, take ``_sig``).
    """
    x = np.asarray(x, dtype=float)
    out = x.copy()
    finite = np.isfinite(x) & (x != 0)
    ax = np.abs(np.where(finite, x, 1.0))
    k = (digits - 1) - np.floor(np.log10(ax)).astype(np.int64)
    safe = finite & (k >= -15) & (k <= 15)
    kk = np.where(safe, k, 0)
    scaled = ax * 10.0 ** kk.astype(float)
    m = np.rint(scaled)
    frac = np.abs(scaled - np.floor(scaled) - 0.5)
    safe &= (m >= 10 ** (digits - 1)) & (m < 10 ** digits) & (frac > 1e-6)
    pos = np.where(kk >= 0, m / 10.0 ** np.maximum(kk, 0).astype(float), m * 10.0 ** np.maximum(-kk, 0).astype(float))
    out[safe] = np.copysign(pos, x)[safe]
    res = out.tolist()
    for i in np.nonzero(finite & ~safe)[0].tolist():
        res[i] = _sig(float(x[i]), digits)
    return res


def _limits(limit: LimitFn, analyte: str, targets: list[Target], ph_lo: np.ndarray, ph_hi: np.ndarray,
            rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    """(strictest, loosest, strictest as ``limit`` returned it) at ``rows`` over each parcel's pH
    interval: ``limit``'s pH bands as arrays where it offers them (``limit.bands``:
    ``spatial.limit_fn``, floats), else ``limit`` per row."""
    strict, loose = np.full(len(targets), np.nan), np.full(len(targets), np.nan)
    bands = getattr(limit, "bands", None)
    if bands is None:
        shown: list[Any] = [None] * len(targets)
        for r in rows.tolist():
            shown[r], lz = limit(analyte, targets[r].land_use, float(ph_lo[r]), float(ph_hi[r]))
            strict[r], loose[r] = shown[r], lz
        return strict, loose, shown
    by_use: dict[str, list[int]] = {}
    for r in rows.tolist():
        by_use.setdefault(targets[r].land_use, []).append(r)
    for land_use, members in by_use.items():
        m = np.array(members)
        lo, hi = ph_lo[m], ph_hi[m]
        s, lz = np.full(len(m), np.inf), np.full(len(m), -np.inf)
        for seg_lo, seg_hi, lim in bands(analyte, land_use):
            hit = np.ones(len(m), bool)
            if seg_lo is not None:
                hit &= hi >= seg_lo
            if seg_hi is not None:
                hit &= lo <= seg_hi
            s = np.where(hit, np.minimum(s, lim), s)
            lz = np.where(hit, np.maximum(lz, lim), lz)
        missing = ~np.isfinite(s)
        for j in np.nonzero(missing)[0].tolist():  # no band: the scalar function says why (it raises)
            s[j], lz[j] = limit(analyte, land_use, float(lo[j]), float(hi[j]))
        strict[m], loose[m] = s, lz
    return strict, loose, strict.tolist()


# row kinds of an unsampled parcel's analyte (``_Rows.kind``)
ROW_ESTIMATED, ROW_TOO_FEW, ROW_PH_NOT_ASSESSED = 0, 1, 2
ROW_VERDICTS = (QUALIFIED, NEEDS_SAMPLING, NOT_QUALIFIED, NOT_ASSESSED)  # ``_Rows.verdict`` indexes these
ROW_REASONS = ("lower_bound_above_limit", "upper_bound_within_limit", "neighbour_exceeds_limit",
               "interval_spans_limit")  # ``_Rows.why`` indexes these (estimated rows)


@dataclass(frozen=True)
class _Rows:
    """One analyte's rows at the unsampled parcels, as arrays and lists (aligned with them)."""

    analyte: str
    method: str
    kind: np.ndarray  # ROW_ESTIMATED | ROW_TOO_FEW | ROW_PH_NOT_ASSESSED
    verdict: np.ndarray  # index into ROW_VERDICTS
    why: np.ndarray  # index into ROW_REASONS (estimated rows)
    value: list[float]  # shown (``_sig``): estimate, σ, bounds
    sigma: list[float]
    lower: list[float]
    upper: list[float]
    limit: list[Any]  # the strictest limit as ``limit`` gave it (estimated rows)
    field: _Field


def _analyte_rows(analyte: str, method: str, f: _Field, ph: _Field, targets: list[Target],
                  limit: LimitFn) -> _Rows:
    """Each unsampled parcel's row for one analyte, as arrays (verdicts by ``judge`` over the
    estimated pH interval's strictest and loosest limits)."""
    both = np.nonzero(f.ok & ph.ok)[0]
    strict, loose, strict_l = _limits(limit, analyte, targets, ph.lower, ph.upper, both)
    kind = np.where(~f.ok, ROW_TOO_FEW, np.where(ph.ok, ROW_ESTIMATED, ROW_PH_NOT_ASSESSED))
    judged, why = judge(f.lower, f.upper, f.hot, strict, loose)  # NaN rows: ``kind`` decides them
    verdict = np.where(kind != ROW_ESTIMATED, 3, judged)
    value, sigma, lower, upper = (_sig_list(a) for a in (f.value, f.sigma, f.lower, f.upper))
    return _Rows(analyte, method, kind, verdict, why, value, sigma, lower, upper, strict_l, f)


_RANKS = np.array([_RANK[v] for v in ROW_VERDICTS])


@dataclass(frozen=True)
class CountyAssessment:
    """``assess``'s answer with the unsampled parcels' rows as arrays (``assess_arrays``):
    ``measured`` by parcel; ``rows`` per analyte (pH apart) aligned with ``unsampled`` (code
    order); ``ph_value``/``ph_sigma`` each parcel's estimated pH as its rows show it."""

    parcels: list[Target]
    measured: dict[str, Assessment]
    unsampled: list[Target]
    rows: dict[str, _Rows]
    ph: _Field
    ph_value: list[float]
    ph_sigma: list[float]
    models: dict[str, Model]

    def verdicts(self) -> tuple[np.ndarray, np.ndarray]:
        """Per unsampled parcel: estimated (an analyte is), and its verdict's index into
        ``ROW_VERDICTS`` (``combine`` of its rows; not assessed where none is estimated)."""
        n = len(self.unsampled)
        estimated = np.zeros(n, bool)
        worst = np.full(n, -1)
        for r in self.rows.values():
            estimated |= r.kind == ROW_ESTIMATED
            worst = np.maximum(worst, _RANKS[r.verdict])
        by_rank = np.array([ROW_VERDICTS.index(v) for v in sorted(_RANK, key=_RANK.__getitem__)])
        verdict = np.where(estimated & (worst >= 0), by_rank[np.maximum(worst, 0)], 3)
        return estimated, verdict

    def texts(self) -> RowTexts:
        """Every unsampled parcel's rows and neighbour sets as JSON text (``RowTexts``): the one
        writer of an estimated parcel's rows (a run stores them, ``assessments`` parses them)."""
        n = len(self.unsampled)
        analytes = list(self.rows)
        fields = [self.rows[a].field for a in analytes] + [self.ph]  # the order sets are numbered in
        set_texts = _set_texts(fields, n)
        same = np.ones(n, bool)
        for f in fields[1:]:
            same &= (f.search == fields[0].search) & (f.row == fields[0].row)
        refs = [[0] * n for _ in fields]  # per field each parcel's set index: the usual parcel has one set
        sets_text = set_texts[0].tolist()
        for i in np.nonzero(~same)[0].tolist():  # some analyte's samples differ: sets by content
            seen: dict[str, int] = {}
            for c, texts in enumerate(set_texts):
                refs[c][i] = seen.setdefault(texts[i], len(seen))
            sets_text[i] = ",".join(seen)
        del set_texts
        ph = [f'{{"value":{v},"sigma":{g}}}' for v, g in zip(_encoded(self.ph_value), _encoded(self.ph_sigma),
                                                           strict=True)]
        rows = [_row_texts(self.rows[a], refs[c]) for c, a in enumerate(analytes)]
        return RowTexts(list(map(",".join, zip(*rows, strict=True))) if rows else [""] * n, ph, sets_text, refs[-1])

    def assessments(self) -> dict[str, Assessment]:
        """Every parcel's assessment, in code order: the unsampled parcels' rows are their text
        (``texts``) parsed, with each row's ``neighbour_set`` index replaced by the set
        (``neighbours``; the analytes that share a set share its dict)."""
        texts = self.texts()
        estimated, verdict = self.verdicts()
        result: dict[str, Assessment] = {}
        k = 0  # position among the unsampled parcels (both lists are in code order)
        for p in self.parcels:
            if p.code in self.measured:
                result[p.code] = self.measured[p.code]
                continue
            sets = orjson.loads(f"[{texts.sets[k]}]")
            rows = {}
            for row in stored_rows(orjson.loads(f'{{"analytes":[{texts.analytes[k]}],"ph":{texts.ph[k]}}}')):
                analyte = row.pop("analyte")
                row["neighbours"] = sets[row.pop("neighbour_set")]
                rows[analyte] = row
            basis = ESTIMATED if estimated[k] else NOT_ASSESSED
            result[p.code] = Assessment(p.code, basis, ROW_VERDICTS[int(verdict[k])], rows, sets[texts.ph_set[k]])
            k += 1
        return result


@dataclass(frozen=True)
class RowTexts:
    """Per unsampled parcel (aligned with ``CountyAssessment.unsampled``): ``analytes``, its rows
    as the body of a JSON array (per analyte, in the pack's order, an array in
    ``basis.ROW_COLUMNS`` order: ``neighbour_set`` is an index into its sets, ``exceeding`` the
    neighbours over their own limit, where any are); ``ph``, its estimated pH shown
    (``{"value", "sigma"}``); ``sets``, its neighbour sets
    (``{"samples": [codes], "distance_m": [m]}``, nearest first: one when every analyte and pH
    used the same samples, else one per distinct set, numbered in order of first use by the
    analytes, then pH) as the body of a JSON array; ``ph_set``, the index of the set its pH was
    estimated from. The text is orjson's compact form of those objects."""

    analytes: list[str]
    ph: list[str]
    sets: list[str]
    ph_set: list[int]


_NO_SET = orjson.dumps({"samples": [], "distance_m": []}).decode()


def _set_texts(fields: Sequence[_Field], n: int) -> list[np.ndarray]:
    """Per field (analytes, then pH) each parcel's neighbour set as JSON text, in an object array
    (one text per search and target, shared by the fields that use the search)."""
    by_search: dict[int, np.ndarray] = {}
    out = []
    for f in fields:
        texts = np.full(n, _NO_SET, dtype=object)
        for s in np.unique(f.search).tolist():
            if s < 0:
                continue
            got = by_search.get(s)
            if got is None:
                got = by_search[s] = np.array(_search_texts(f.searches[s]), dtype=object)
            members = np.nonzero(f.search == s)[0]
            texts[members] = got[f.row[members]]
        out.append(texts)
    return out


def _search_texts(search: Search) -> list[str]:
    """Each target's neighbour set of one search as ``orjson`` writes ``{"samples", "distance_m"}``:
    the codes picked as an object array and the distances of all targets encoded in one call,
    then the targets with fewer than the full number of neighbours written one by one."""
    n, k = search.idx.shape
    if n == 0 or k == 0:
        return [_NO_SET] * n
    codes = search.code_texts
    samples = map(",".join, codes[np.maximum(search.idx, 0)].tolist())
    metres = orjson.dumps(np.ascontiguousarray(search.metres), option=orjson.OPT_SERIALIZE_NUMPY).decode()
    out = [f'{{"samples":[{s}],"distance_m":[{d}]}}' for s, d in zip(samples, metres[2:-2].split("],["), strict=True)]
    for j in np.nonzero(search.counts < k)[0].tolist():
        c = int(search.counts[j])
        out[j] = ('{"samples":[' + ",".join(codes[search.idx[j, :c]].tolist()) + '],"distance_m":['
                  + ",".join(map(str, search.metres[j, :c].tolist())) + "]}")
    return out


def _encoded(values: Sequence[Any]) -> list[str]:
    """Each number (or None; NaN as null) as ``orjson`` writes it, from one call for the list."""
    if not values:
        return []
    return orjson.dumps(list(values)).decode()[1:-1].split(",")


def _row_texts(r: _Rows, refs: Sequence[int]) -> list[str]:
    """Each unsampled parcel's row of one analyte as JSON text (``RowTexts.analytes``; an array
    in ``basis.ROW_COLUMNS`` order, ``refs[i]`` its set's index). Written as estimated rows in
    one pass, then the few others replaced."""
    name, method = orjson.dumps(r.analyte).decode(), orjson.dumps(r.method).decode()
    value, sigma, lower, upper, limit = (_encoded(x) for x in (r.value, r.sigma, r.lower, r.upper, r.limit))
    exceeding = [""] * len(refs)
    for i, codes in r.field.exceeding.items():
        if codes:
            exceeding[i] = f",{codes}"
    verdicts = np.array(ROW_VERDICTS, dtype=object)[r.verdict].tolist()
    reasons = np.array(ROW_REASONS, dtype=object)[r.why].tolist()
    head = f'[{name},"estimated",{method},'
    out = [f'{head}{v},{s},{lo},{up},{ref},{lim},"{verdict}","{why}"{ex}]'
           for v, s, lo, up, ref, lim, verdict, why, ex in zip(
               value, sigma, lower, upper, refs, limit, verdicts, reasons, exceeding, strict=True)]
    kind = r.kind
    for i in np.nonzero(kind == ROW_TOO_FEW)[0].tolist():
        out[i] = (f'[{name},"not_assessed",null,null,null,null,null,{refs[i]},null,"not_assessed",'
                  f'"too_few_neighbours"{exceeding[i]}]')
    for i in np.nonzero(kind == ROW_PH_NOT_ASSESSED)[0].tolist():
        out[i] = (f'[{name},"not_assessed",{method},{value[i]},{sigma[i]},{lower[i]},{upper[i]},{refs[i]},null,'
                  f'"not_assessed","ph_not_assessed"{exceeding[i]}]')
    return out
