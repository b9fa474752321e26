"""The simulation's kernel: one pass over a team's draws per chunk, in C (``_kernel.c``).

After numpy's SFC64 has drawn a chunk's standard normals, every draw is touched once, while it
is hot: the shared game and team term added, the player's scale applied, the floor at zero,
then the float64 running sum, the maximum, the value-target count, the histogram slot, and the
draw centred for the teammates' products (which BLAS does next, where it is fastest). numpy
took seven passes for the same work, each reading and writing the chunk through memory.

Why C and not numba: the same loop ran within a few percent of numba's machine code, but numba
and LLVM add about 130 MiB of memory to every worker process and 1 to 2 s of compilation to
its first job (or a cache directory that a read-only container does not have); the C module
costs neither, builds with the package (``pip install -e .``: a C compiler and Python's
headers) and needs no numpy headers (it takes buffers). These wrappers check each array's
dtype, layout and shape, so the C side can trust them.
"""

from __future__ import annotations

import numpy as np

from app.slates import _kernel  # type: ignore[attr-defined]

DRAW_DTYPE = np.float32


def _check(name: str, array: np.ndarray, dtype: type, shape: tuple[int, ...]) -> None:
    if array.dtype != dtype or array.shape != shape or not array.flags.c_contiguous:
        raise ValueError(
            f"{name}: expected a C-contiguous {np.dtype(dtype).name} array of shape {shape}, "
            f"got {array.dtype} {array.shape}"
        )


def block_sums(
    draws: np.ndarray,
    shared: np.ndarray,
    own_scale: np.ndarray,
    floor: np.ndarray,
    sums: np.ndarray,
) -> None:
    """Each row's float64 sum of one block's floored draws (``draws``: rows x scenarios)."""
    rows, size = draws.shape
    for name, array, dtype, shape in (
        ("draws", draws, DRAW_DTYPE, (rows, size)),
        ("shared", shared, DRAW_DTYPE, (size,)),
        ("own_scale", own_scale, DRAW_DTYPE, (rows,)),
        ("floor", floor, DRAW_DTYPE, (rows,)),
        ("sums", sums, np.float64, (rows,)),
    ):
        _check(name, array, dtype, shape)
    _kernel.block_sums(draws, shared, own_scale, floor, sums, rows, size)


def reduce_team_chunk(
    draws: np.ndarray,
    shared: np.ndarray,
    own_scale: np.ndarray,
    floor: np.ndarray,
    threshold: np.ndarray,
    shift: np.ndarray,
    center: np.ndarray,
    sums: np.ndarray,
    maximum: np.ndarray,
    hits: np.ndarray,
    histogram: np.ndarray,
    centred: np.ndarray,
) -> None:
    """One team's chunk in one pass.

    ``draws`` (blocks x rows x scenarios) are raw standard normals and ``shared`` (blocks x
    scenarios) the team's common term in units of the own term; per row, ``own_scale``,
    ``floor``, ``threshold``, ``shift`` and ``center`` are the plan's constants
    (simulation.py). Writes ``sums`` (blocks x rows, float64) and ``centred`` (the floored
    draws minus ``center``), and adds to ``maximum``, ``hits`` and ``histogram`` (rows x
    slots: slot 0 counts exactly 0 points, slot k points in (k - 1, k] bin units, the last one
    everything from the top up).
    """
    blocks, rows, size = draws.shape
    slots = histogram.shape[1]
    for name, array, dtype, shape in (
        ("draws", draws, DRAW_DTYPE, (blocks, rows, size)),
        ("shared", shared, DRAW_DTYPE, (blocks, size)),
        ("own_scale", own_scale, DRAW_DTYPE, (rows,)),
        ("floor", floor, DRAW_DTYPE, (rows,)),
        ("threshold", threshold, DRAW_DTYPE, (rows,)),
        ("shift", shift, DRAW_DTYPE, (rows,)),
        ("center", center, DRAW_DTYPE, (rows,)),
        ("sums", sums, np.float64, (blocks, rows)),
        ("maximum", maximum, DRAW_DTYPE, (rows,)),
        ("hits", hits, np.int64, (rows,)),
        ("histogram", histogram, np.int64, (rows, slots)),
        ("centred", centred, DRAW_DTYPE, (blocks, rows, size)),
    ):
        _check(name, array, dtype, shape)
    _kernel.reduce_team_chunk(
        draws,
        shared,
        own_scale,
        floor,
        threshold,
        shift,
        center,
        sums,
        maximum,
        hits,
        histogram,
        centred,
        blocks,
        rows,
        size,
        slots,
    )
