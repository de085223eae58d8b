"""The cells of one container and how they touch: :class:`UnitGraph` and its :class:`DistanceTable`.

The graph is the partitioner's input (GerryChain's ``Graph``): arrays aligned to the cells
(weights, households, areas, perimeters, a point each), a symmetric CSR adjacency with the
length of boundary each pair shares and what it costs as a region boundary, the walking
distances between cells, and the current labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import sparse
from scipy.sparse import csgraph

__all__ = ["DistanceTable", "UnitGraph"]


class DistanceTable:
    """Walking distances between cells (metres; ``inf`` beyond the search limit).

    Dense ``float32`` up to a few thousand cells; beyond, a sparse CSR of the finite
    entries stored as ``distance + 1`` (so that a stored zero never means "absent").
    """

    def __init__(self, n: int, *, dense: NDArray | None = None, csr: sparse.csr_matrix | None = None):
        self.n = n
        self._dense = dense
        self._csr = csr

    @classmethod
    def from_dense(cls, d: ArrayLike) -> DistanceTable:
        arr = np.asarray(d, dtype=np.float32)
        return cls(arr.shape[0], dense=arr)

    @classmethod
    def from_sparse(cls, n: int, rows: NDArray, cols: NDArray, values: NDArray) -> DistanceTable:
        """From the finite entries only (everything else is ``inf``)."""
        csr = sparse.csr_matrix((np.asarray(values, dtype=np.float32) + 1.0, (rows, cols)), shape=(n, n))
        csr.sort_indices()
        return cls(n, csr=csr)

    @classmethod
    def euclidean(cls, xy: NDArray[np.float64], *, factor: float = 1.0) -> DistanceTable:
        """Straight-line distances times ``factor`` (a stand-in when there is no network)."""
        d = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1]) * factor
        return cls.from_dense(d)

    def row(self, i: int) -> NDArray:
        """Distances from cell ``i`` to every cell."""
        if self._dense is not None:
            return self._dense[i]
        out = np.full(self.n, np.inf, dtype=np.float32)
        lo, hi = self._csr.indptr[i], self._csr.indptr[i + 1]
        out[self._csr.indices[lo:hi]] = self._csr.data[lo:hi] - 1.0
        return out

    def block(self, rows: Sequence[int], cols: Sequence[int]) -> NDArray:
        """Distances from ``rows`` to ``cols``."""
        if self._dense is not None:
            return self._dense[np.ix_(rows, cols)]
        # straight from the CSR arrays (scipy's fancy indexing costs far more for the few
        # dozen rows a region has)
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        out = np.full((rows.size, cols.size), np.inf, dtype=np.float32)
        indptr, indices, data = self._csr.indptr, self._csr.indices, self._csr.data
        start, stop = indptr[rows], indptr[rows + 1]
        length = stop - start
        if length.sum() == 0:
            return out
        which = np.repeat(np.arange(rows.size), length)
        at = np.arange(int(length.sum())) - np.repeat(np.cumsum(length) - length, length) + np.repeat(start, length)
        colpos = np.full(self.n, -1, dtype=np.int64)
        colpos[cols] = np.arange(cols.size)
        pos = colpos[indices[at]]
        keep = pos >= 0
        out[which[keep], pos[keep]] = data[at[keep]] - 1.0
        return out


# ---------------------------------------------------------------------------------------------
# graph, problem, partition
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class UnitGraph:
    """Cells of one container and how they touch; every array is aligned to the cells.

    Parameters
    ----------
    weight
        The balanced quantity (households or population) per cell.
    households, population
        Per cell (fillers have 0).
    homes
        Cells whose walking distance counts (they hold homes).
    can_host
        Cells that may host a region's service point (real units).
    area_m2, perimeter_m
        Cell areas and perimeters.
    xy
        ``(n, 2)`` a point per cell (metres).
    indptr, indices, shared_m, cut_cost_m
        Symmetric CSR adjacency: neighbours, shared boundary length, and its cost when
        it becomes a region boundary (lower along streets and barriers).
    dist
        Walking distances between cells.
    current
        Current region label per cell (``-1`` unknown).
    container
        Container label per cell (nesting).
    """

    weight: NDArray[np.float64]
    households: NDArray[np.float64]
    population: NDArray[np.float64]
    homes: NDArray[np.bool_]
    can_host: NDArray[np.bool_]
    area_m2: NDArray[np.float64]
    perimeter_m: NDArray[np.float64]
    xy: NDArray[np.float64]
    indptr: NDArray[np.int64]
    indices: NDArray[np.int64]
    shared_m: NDArray[np.float64]
    cut_cost_m: NDArray[np.float64]
    dist: DistanceTable
    current: NDArray[np.int64]
    container: NDArray[np.int64]

    @property
    def n(self) -> int:
        """Number of cells."""
        return int(self.weight.shape[0])

    @classmethod
    def from_edges(
        cls,
        *,
        weight: ArrayLike,
        edges_i: ArrayLike,
        edges_j: ArrayLike,
        shared_m: ArrayLike,
        cut_cost_m: ArrayLike | None = None,
        area_m2: ArrayLike,
        perimeter_m: ArrayLike,
        xy: ArrayLike,
        dist: DistanceTable,
        households: ArrayLike | None = None,
        population: ArrayLike | None = None,
        homes: ArrayLike | None = None,
        can_host: ArrayLike | None = None,
        current: ArrayLike | None = None,
        container: ArrayLike | None = None,
    ) -> UnitGraph:
        """Build a graph from undirected edge lists (each pair once)."""
        w = np.asarray(weight, dtype=float)
        n = w.size
        ei = np.asarray(edges_i, dtype=np.int64)
        ej = np.asarray(edges_j, dtype=np.int64)
        sh = np.asarray(shared_m, dtype=float)
        cc = sh if cut_cost_m is None else np.asarray(cut_cost_m, dtype=float)
        rows = np.concatenate([ei, ej])
        cols = np.concatenate([ej, ei])
        order = np.lexsort((cols, rows))
        rows, cols = rows[order], cols[order]
        shv = np.concatenate([sh, sh])[order]
        ccv = np.concatenate([cc, cc])[order]
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
        hh = w if households is None else np.asarray(households, dtype=float)
        return cls(
            weight=w,
            households=hh,
            population=np.zeros(n) if population is None else np.asarray(population, dtype=float),
            homes=(hh > 0) if homes is None else np.asarray(homes, dtype=bool),
            can_host=np.ones(n, dtype=bool) if can_host is None else np.asarray(can_host, bool),
            area_m2=np.asarray(area_m2, dtype=float),
            perimeter_m=np.asarray(perimeter_m, dtype=float),
            xy=np.asarray(xy, dtype=float).reshape(n, 2),
            indptr=indptr,
            indices=cols,
            shared_m=shv,
            cut_cost_m=ccv,
            dist=dist,
            current=np.full(n, -1, np.int64) if current is None else np.asarray(current, np.int64),
            container=np.zeros(n, np.int64) if container is None else np.asarray(container, np.int64),
        )

    @classmethod
    def lattice(
        cls,
        nx: int,
        ny: int,
        *,
        weight: ArrayLike,
        cell_m: float = 100.0,
        current: ArrayLike | None = None,
    ) -> UnitGraph:
        """An ``nx`` x ``ny`` lattice of square cells (row-major, x fastest), rook adjacency,
        walking distance = Manhattan distance between cell centres (a street grid).

        Examples
        --------
        >>> g = UnitGraph.lattice(3, 3, weight=np.ones(9))
        >>> g.n, int(g.indptr[-1]) // 2
        (9, 12)
        """
        n = nx * ny
        ix, iy = np.meshgrid(np.arange(nx), np.arange(ny))
        ix, iy = ix.ravel(), iy.ravel()
        idx = iy * nx + ix
        right = ix < nx - 1
        up = iy < ny - 1
        ei = np.concatenate([idx[right], idx[up]])
        ej = np.concatenate([idx[right] + 1, idx[up] + nx])
        xy = np.column_stack([(ix + 0.5) * cell_m, (iy + 0.5) * cell_m]).astype(float)
        d = np.abs(xy[:, None, 0] - xy[None, :, 0]) + np.abs(xy[:, None, 1] - xy[None, :, 1])
        return cls.from_edges(
            weight=weight, edges_i=ei, edges_j=ej, shared_m=np.full(ei.size, cell_m),
            area_m2=np.full(n, cell_m * cell_m), perimeter_m=np.full(n, 4 * cell_m), xy=xy,
            dist=DistanceTable.from_dense(d), current=current,
        )

    @cached_property
    def csr(self) -> sparse.csr_matrix:
        """Adjacency as a CSR matrix of shared lengths."""
        return sparse.csr_matrix((self.shared_m, self.indices, self.indptr), shape=(self.n, self.n))

    @cached_property
    def component(self) -> NDArray[np.int64]:
        """Connected-component label of each cell."""
        _, lab = csgraph.connected_components(self.csr, directed=False)
        return lab.astype(np.int64)

