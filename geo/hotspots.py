"""Getis-Ord Gi* hot and cold spots on H3 cells, with a false-discovery-rate correction.

The study area is a set of H3 cells (int64 ids, one resolution). Neighbours are the cells of
``h3.grid_disk(cell, k)`` that lie in the study area (k = 1: the six touching hexagons, the hexagonal
"queen" contiguity), with binary weights and the cell itself included, as the Gi* statistic has it.

For values :math:`x_1..x_n` and weights :math:`w_{ij}` (Getis & Ord 1992; Ord & Getis 1995; the
formula of ArcGIS *Hot Spot Analysis*):

.. math::

    z_i = \\frac{\\sum_j w_{ij} x_j - \\bar x \\sum_j w_{ij}}
               {S \\sqrt{\\left(n \\sum_j w_{ij}^2 - (\\sum_j w_{ij})^2\\right) / (n - 1)}}

with :math:`\\bar x` the mean and :math:`S` the (population) standard deviation of all :math:`n`
values. This is exactly ``esda.G_Local(x, w, transform="B", star=True).Zs``. The p-value is
two-sided from the normal distribution (esda's ``p_norm`` is the one-sided half of it).

``gi_bin`` follows ArcGIS's ``Gi_Bin``: +3 / -3 hot / cold at 99 % confidence, +-2 at 95 %, +-1 at
90 %, 0 not significant. With ``fdr=True`` each confidence level uses the Benjamini–Hochberg
critical p-value for that level over all cells (ArcGIS's "Apply False Discovery Rate Correction").

Examples
--------
>>> import h3
>>> centre = h3.str_to_int(h3.latlng_to_cell(32.06, 118.78, 9))
>>> ring = sorted(h3.api.basic_int.grid_disk(centre, 2))
>>> counts = pd.Series(0, index=pd.Index(ring, dtype="int64"))
>>> counts[list(h3.api.basic_int.grid_disk(centre, 1))] = 10
>>> out = hotspots(counts)
>>> int(out.loc[centre, "gi_bin"]), round(float(out.loc[centre, "z"]), 3)
(3, 4.243)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import h3.api.basic_int as h3i
import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtr

from geo import hexes
from geo._errors import GeoError

#: Significance levels of Gi_Bin 1, 2, 3 (90 %, 95 %, 99 % confidence).
ALPHAS: tuple[float, float, float] = (0.10, 0.05, 0.01)


class HexCellError(GeoError):
    """Cell ids are not valid, unique H3 cells of one resolution."""


class GiStar(NamedTuple):
    """Gi* results, aligned to the input values."""

    z: NDArray[np.float64]
    p: NDArray[np.float64]


def check_cells(cells: ArrayLike) -> NDArray[np.int64]:
    """Validate int64 H3 cell ids (valid cell mode, one resolution, unique) and return them.

    Raises
    ------
    HexCellError
        With the first offending id and what to do.
    """
    c = np.asarray(cells)
    if c.dtype.kind not in "iu":
        raise HexCellError(f"H3 cells must be int64 ids, got dtype {c.dtype}; convert with h3.str_to_int")
    c = c.astype(np.int64, copy=False)
    if c.size == 0:
        return c
    bad = np.flatnonzero((c <= 0) | (hexes.cell_modes(c) != 1))
    if bad.size:
        raise HexCellError(f"{c[bad[0]]} is not an H3 cell id (0 means no cell); drop rows without a cell")
    res = hexes.cell_resolutions(c)
    if (res != res[0]).any():
        raise HexCellError(
            f"cells mix H3 resolutions {sorted(set(res.tolist()))}; use the h3_<res> column of one resolution"
        )
    if np.unique(c).size != c.size:
        raise HexCellError("cell ids repeat; aggregate counts per cell first (see count_cells)")
    return c


def cell_resolution(cells: ArrayLike) -> int:
    """The H3 resolution of int64 cell ids (all the same, see :func:`check_cells`)."""
    c = check_cells(cells)
    if c.size == 0:
        raise HexCellError("no cells")
    return int(hexes.cell_resolutions(c[:1])[0])


def hex_weights(cells: ArrayLike, *, k: int = 1, self_weight: bool = True) -> sp.csr_array:
    """Binary k-ring contiguity among ``cells``: a sparse ``n x n`` matrix in the order of ``cells``.

    ``w[i, j] = 1`` when cell ``j`` is within ``k`` grid steps of cell ``i`` (``h3.grid_disk``) and
    both are in ``cells``; the diagonal is 1 with ``self_weight`` (Gi*), else 0 (Gi).
    """
    if k < 1:
        raise ValueError("k must be >= 1 (k = 1: the six neighbouring hexagons)")
    c = check_cells(cells)
    n = c.size
    order = np.argsort(c)
    sorted_c = c[order]
    disks = [h3i.grid_disk(x, k) for x in c.view(np.uint64).tolist()]
    lens = np.fromiter((len(d) for d in disks), dtype=np.int64, count=n)
    nb = np.fromiter((x for d in disks for x in d), dtype=np.uint64, count=int(lens.sum())).view(np.int64)
    rows = np.repeat(np.arange(n), lens)
    pos = np.clip(np.searchsorted(sorted_c, nb), 0, max(n - 1, 0))
    inside = sorted_c[pos] == nb if n else np.zeros(0, bool)
    cols = order[pos[inside]]
    rows = rows[inside]
    if not self_weight:
        keep = rows != cols
        rows, cols = rows[keep], cols[keep]
    w = sp.csr_array((np.ones(rows.size), (rows, cols)), shape=(n, n))
    w.sum_duplicates()
    return w


def gi_star(values: ArrayLike, weights: sp.sparray | sp.spmatrix | NDArray[np.float64]) -> GiStar:
    """Analytical Gi* z-scores and two-sided p-values of ``values`` under ``weights``.

    ``weights`` is any ``n x n`` matrix (sparse or dense) whose diagonal holds the self-weights.
    Where the statistic is undefined (all values equal, or a neighbourhood covering every cell)
    z and p are NaN.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError("values must be one-dimensional")
    n = x.size
    if weights.shape != (n, n):
        raise ValueError(f"weights are {weights.shape}, values have {n} entries")
    if not np.isfinite(x).all():
        raise ValueError("values contain NaN or infinity; fill empty cells with 0 first")
    w = sp.csr_array(weights) if not isinstance(weights, np.ndarray) else weights
    wsum = np.asarray(w.sum(axis=1)).ravel()
    wsq = np.asarray((w.multiply(w) if sp.issparse(w) else w * w).sum(axis=1)).ravel()
    lag = np.asarray(w @ x).ravel()
    return _gi_from_sums(lag, wsum, wsq, x.mean(), x.std(), n)


def _gi_from_sums(
    lag: NDArray[np.float64], wsum: NDArray[np.float64], wsq: NDArray[np.float64],
    mean: float, std: float, n: int,
) -> GiStar:
    """Gi* from the weighted sums; shared with the space-time version."""
    with np.errstate(divide="ignore", invalid="ignore"):
        den = std * np.sqrt((n * wsq - wsum**2) / (n - 1))
        z = (lag - mean * wsum) / den
    z = np.where(np.isfinite(z) & (den > 1e-12 * max(abs(mean), 1.0)), z, np.nan)
    p = 2.0 * ndtr(-np.abs(z))
    return GiStar(z, p)


def fdr_threshold(p: ArrayLike, *, alpha: float) -> float:
    """Benjamini–Hochberg critical p-value at level ``alpha`` (0.0 when nothing is significant).

    NaN p-values are ignored (they count neither as tests nor as discoveries).
    """
    q = np.sort(np.asarray(p, dtype=np.float64)[~np.isnan(np.asarray(p, dtype=np.float64))])
    m = q.size
    if m == 0:
        return 0.0
    ok = np.flatnonzero(q <= alpha * np.arange(1, m + 1) / m)
    return float(q[ok[-1]]) if ok.size else 0.0


def gi_bins(z: ArrayLike, p: ArrayLike, *, fdr: bool = True, alphas: Sequence[float] = ALPHAS) -> NDArray[np.int8]:
    """ArcGIS ``Gi_Bin`` classes -3..3 from z-scores and p-values (see the module docstring)."""
    z = np.asarray(z, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    level = np.zeros(z.shape, dtype=np.int8)
    flat_p = p.ravel()
    for i, a in enumerate(alphas, start=1):
        crit = fdr_threshold(flat_p, alpha=a) if fdr else a
        sig = (p <= crit) if fdr else (p < crit)
        level = np.where(sig & ~np.isnan(p), np.int8(i), level)
    return (np.sign(np.nan_to_num(z)).astype(np.int8) * level).astype(np.int8)


def count_cells(cells: ArrayLike, *, domain: ArrayLike | None = None) -> pd.Series:
    """Number of points per H3 cell (int64 ids, e.g. the ``h3_9`` column stored at ingest).

    Parameters
    ----------
    cells
        One cell id per point; 0 (no cell) is skipped.
    domain
        The study area's cells: the result has exactly these (in this order), zeros included, and
        points in other cells are dropped. Default: the cells that occur.

    Returns
    -------
    pandas.Series
        ``count`` (int64) indexed by ``cell``.
    """
    c = np.asarray(cells, dtype=np.int64)
    c = c[c != 0]
    if domain is None:
        u, n = np.unique(c, return_counts=True)
        return pd.Series(n.astype(np.int64), index=pd.Index(u, name="cell"), name="count")
    d = check_cells(domain)
    order = np.argsort(d)
    sd = d[order]
    pos = np.clip(np.searchsorted(sd, c), 0, max(sd.size - 1, 0))
    hit = sd[pos] == c if sd.size else np.zeros(c.size, bool)
    counts = np.zeros(d.size, dtype=np.int64)
    counts[order] = np.bincount(pos[hit], minlength=sd.size)
    return pd.Series(counts, index=pd.Index(d, name="cell"), name="count")


def hotspots(
    counts: pd.Series,
    *,
    k: int = 1,
    fdr: bool = True,
    weights: sp.sparray | None = None,
) -> pd.DataFrame:
    """Gi* hot and cold spots of per-cell values.

    Parameters
    ----------
    counts
        Values (usually incident counts, zeros included) indexed by int64 H3 cell id: the whole
        study area, as :func:`count_cells` with ``domain`` returns it.
    k
        Neighbourhood radius in grid steps.
    fdr
        Apply the false-discovery-rate correction to the classes.
    weights
        Precomputed :func:`hex_weights` for ``counts.index`` (reuse it across filters).

    Returns
    -------
    pandas.DataFrame
        Aligned to ``counts``: ``count``, ``z``, ``p`` (two-sided) and ``gi_bin`` (-3..3).
    """
    cells = check_cells(counts.index.to_numpy())
    w = hex_weights(cells, k=k) if weights is None else weights
    res = gi_star(counts.to_numpy(dtype=np.float64), w)
    return pd.DataFrame(
        {"count": counts.to_numpy(), "z": res.z, "p": res.p, "gi_bin": gi_bins(res.z, res.p, fdr=fdr)},
        index=counts.index,
    )


def rates_per_1000(counts: pd.Series, population: pd.Series) -> pd.DataFrame:
    """Incidents per 1,000 residents by area (e.g. per grid).

    Parameters
    ----------
    counts
        Incident counts indexed by area code (areas without incidents may be missing).
    population
        Residents indexed by area code.

    Returns
    -------
    pandas.DataFrame
        Aligned to ``population``: ``count``, ``population`` and ``rate_per_1000`` (NaN where
        nobody lives).
    """
    if population.index.has_duplicates:
        raise ValueError("population has repeated area codes; one row per area")
    cnt = counts.groupby(level=0).sum().reindex(population.index, fill_value=0).astype(np.int64)
    pop = pd.to_numeric(population, errors="coerce").astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(pop > 0, cnt.to_numpy() * 1000.0 / pop.to_numpy(), np.nan)
    return pd.DataFrame({"count": cnt.to_numpy(), "population": pop.to_numpy(), "rate_per_1000": rate},
                        index=population.index)
