"""The arguments of the compiled candidate pass, as named structures.

``candidate_pass.run_query`` reads some forty arrays, many of the same dtype: given
positionally, two of them swapped would compile and answer wrongly without a sound. Here
they are grouped by meaning into ``NamedTuple`` classes, built with keywords and read by
name inside the compiled code (numba types a namedtuple's fields statically, so reading
one costs nothing):

- ``GridArrays``: the space-time grid (``grid.Grid`` and its ``Levels``);
- ``StoreArrays``: the volume store's table and vertex blocks (``store.VolumeStore``);
- ``Stamps``: the reader's slot and declaration stamps and the marks of ``only``;
- ``QueryArrays``: the query's volumes (``candidate_pass.Query``);
- ``Rule``: the separations per stored kind, who asks, and the mode;
- ``ScratchArrays``: the work budget, MEASURE's pruning, scratch and outputs
  (``candidate_pass.Scratch``);
- ``Share``: which query volumes, which share of the slots, and where the outputs resume;
- ``QueryVolume``: one query volume decoded, built inside the compiled pass.

Field names are those of the attributes they come from, so a test can check each field
is the array it names. Crossing into compiled code they travel as plain tuples and are
rebuilt by the same classes on the other side (see ``candidate_pass.run_query``): numba
types a namedtuple argument from its class and field names at every call, which cost some
3 microseconds per query, against none for a tuple.

The compiled code that rebuilds these classes is cached on disk by numba under a hash of
the engine's modules (``kernels._cache_directory``), this one among them: reordering a
class's fields changes the hash, so no stale machine code maps positions to old names.
"""

from __future__ import annotations

from typing import NamedTuple

from deconflict.engine.grid import Float32s, Grid, Int32s
from deconflict.engine.store import VolumeStore
from deconflict.geo.compiled import Codes, Floats, Ints


class GridArrays(NamedTuple):
    """The grid: the hash table of groups, the entry pool, and the levels' cells."""

    table: Ints
    groups: Ints
    bounds: Float32s
    slots: Int32s
    counts: Ints
    theta: Floats
    band_h: Floats
    bands: Ints
    band_cells: Ints
    band_first: Ints
    span_s: Floats

    @classmethod
    def of(cls, grid: Grid) -> GridArrays:
        levels = grid.levels
        return cls(
            table=grid.table,
            groups=grid.groups,
            bounds=grid.bounds,
            slots=grid.slots,
            counts=grid.counts,
            theta=levels.theta,
            band_h=levels.band_h,
            bands=levels.bands,
            band_cells=levels.band_cells,
            band_first=levels.band_first,
            span_s=levels.span_s,
        )


class StoreArrays(NamedTuple):
    """The store: a row per volume slot (``store.COLUMNS``) below ``high_water``, and the
    encoded vertex blocks they point into."""

    table: Floats
    high_water: int
    rows: Floats
    codes: Codes

    @classmethod
    def of(cls, store: VolumeStore) -> StoreArrays:
        return cls(
            table=store.table, high_water=store.high_water, rows=store.rows, codes=store.codes
        )


class Stamps(NamedTuple):
    """A reader's stamps: a slot seen by query volume ``i`` holds ``stamp + i``, a
    declaration found in conflict holds ``stamp``; ``only[decl] == only_mark`` for the
    declarations a query is restricted to (every one when ``only_mark`` is 0)."""

    slot_stamps: Int32s
    decl_stamps: Int32s
    stamp: int
    only: Int32s
    only_mark: int


class QueryArrays(NamedTuple):
    """The query's volumes: a row each (``store.COLUMNS``) and their vertex blocks."""

    table: Floats
    rows: Floats
    codes: Codes


class Rule(NamedTuple):
    """The rule of a query: per stored kind, the horizontal and vertical separation and
    whether the two kinds may conflict; the asking owner's code and declaration's slot
    (-1 for none); and the mode (``candidate_pass.IDS``, ``MEASURE`` or ``AREA``)."""

    sep_h: Floats
    sep_v: Floats
    eligible: Ints
    owner: int
    decl: int
    mode: int


class ScratchArrays(NamedTuple):
    """One thread's arrays: ``work`` (``candidate_pass.WORK_SPENT``, ...), what MEASURE
    knows per declaration, the decoded query volume (``_a``) and candidate (``_b``), the
    batches of ``scan``, the outputs and the counts (``candidate_pass.STATS``)."""

    work: Ints
    known: Floats
    rings_a: Ints
    parts_a: Ints
    ends_a: Ints
    sides_a: Floats
    plane_a: Floats
    near: Ints
    rings_b: Ints
    parts_b: Ints
    ends_b: Ints
    sides_b: Floats
    batch: Ints
    pending: Floats
    out_slot: Ints
    out_q: Ints
    out_d: Floats
    out_flag: Codes
    stats: Ints


class Share(NamedTuple):
    """What one call does: the query volumes from ``first`` on, outputs written from
    ``n`` on, the slots of share ``part`` of ``parts``; alone (``parts == 1``), it stops
    before a volume whose plan reads more than ``split_above`` entries."""

    first: int
    n: int
    part: int
    parts: int
    split_above: int


class QueryVolume(NamedTuple):
    """One query volume as ``scan`` tests it: its row of the query table and number, and
    its geometry decoded into the scratch's ``_a`` arrays (``kernels.decode``, ``edges``
    and ``project``) with the numbers of rings, parts and edges and its shortest chord."""

    row: Floats
    number: int
    rings: Ints
    nrings: int
    parts: Ints
    nparts: int
    ends: Ints
    sides: Floats
    nedges: int
    plane: Floats
    short: float
