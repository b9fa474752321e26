"""The simulation's kernel in C (``_kernel.c``): a team chunk's normals drawn and reduced in
one pass.

Each block's SFC64 generator (numpy's, seeded and first used by simulation.py) is handed over
as its state; the kernel steps it itself and makes float32 standard normals with the same
ziggurat, bits and order as numpy's ``Generator.standard_normal(dtype=float32)``, so the draws
are numpy's own, value for value (tests/slates/test_kernel.py compares them). Each draw is
then touched once, in a register: the shared game and team term added, the player's scale
applied, the floor at zero, then the float64 running sum, the maximum, the value-target
count, the histogram slot, and the draw centred for the teammates' products (which BLAS does
next, where it is fastest). Before 0.6 numpy drew the normals into memory (one indirect call
per value) and took seven more passes over them, each reading and writing the chunk.

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
# A generator as the kernel holds it: SFC64's four words, then numpy's spare-half flag and
# the spare upper half of the last word (its next 32 bits when the flag is set).
GENERATOR_WORDS = 6


def _check(name: str, array: np.ndarray, dtype: type, shape: tuple[int, ...]) -> None:
    if array.dtype != dtype or array.shape != shape or not array.flags.c_contiguous:
        raise ValueError(
            f"{name}: expected a C-contiguous {np.dtype(dtype).name} array of shape {shape}, "
            f"got {array.dtype} {array.shape}"
        )


def generator_states(generators: list[np.random.Generator]) -> np.ndarray:
    """The states of SFC64 generators, one row each, for the kernel to go on drawing from.

    The numpy generators are left where they are: draw from the rows, not from them.
    """
    states = np.empty((len(generators), GENERATOR_WORDS), dtype=np.uint64)
    for row, generator in zip(states, generators, strict=True):
        state = generator.bit_generator.state
        if state["bit_generator"] != "SFC64":
            raise ValueError(f"the kernel draws from SFC64, not {state['bit_generator']}")
        row[:4] = state["state"]["state"]
        row[4:] = state["has_uint32"], state["uinteger"]
    return states


def standard_normals(state: np.ndarray, out: np.ndarray) -> None:
    """Fill ``out`` (float32, any C-contiguous shape) with the standard normals numpy's
    ``standard_normal(dtype=float32)`` would give from ``state`` (one generator row), in
    the same order; advances ``state``."""
    _check("state", state, np.uint64, (GENERATOR_WORDS,))
    _check("out", out, DRAW_DTYPE, out.shape)
    _kernel.standard_normals(state, out, out.size)


def reduce_team_chunk(
    source: np.ndarray,
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

    ``source`` is either the chunk's raw standard normals (float32, blocks x rows x
    scenarios) or one generator state per block (``generator_states``), which the kernel
    draws them from, row after row, and advances. ``shared`` (blocks x scenarios) is the
    team's common term in units of the own term; per row, ``own_scale``, ``floor``,
    ``threshold``, ``shift`` and ``center`` are the plan's constants (simulation.py). Writes
    ``sums`` (blocks x rows, float64) and ``centred`` (the floored draws minus ``center``),
    and adds to ``maximum``, ``hits`` and ``histogram`` (rows x slots: slot 0 counts exactly
    0 points, slot k points in (k - 1, k] bin units, the last one everything from the top up).
    """
    blocks, rows, size = centred.shape
    slots = histogram.shape[-1]
    generate = source.dtype == np.uint64
    source_dtype, source_shape = (
        (np.uint64, (blocks, GENERATOR_WORDS)) if generate else (DRAW_DTYPE, (blocks, rows, size))
    )
    for name, array, dtype, shape in (
        ("source", source, source_dtype, source_shape),
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
        source,
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
        generate,
    )
