"""The C kernel against numpy doing the same arithmetic pass by pass (the pipeline before 0.5).

Invariants: every float32 value (the floored draws, their centred copy, the maximum) is
bit-identical to numpy's; the hits and every histogram slot are the same integers; the float64
sums agree to rounding; bad buffers are refused before C sees them.
"""

from __future__ import annotations

import numpy as np
import pytest

from app.slates import kernel

F32 = np.float32
BLOCKS, ROWS, SIZE, SLOTS = 3, 7, 1000, 65


def inputs(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    # Players from nearly always floored to never, some beyond the histogram's top; the floor
    # is where the points are 0, as the plan sets it.
    shift = rng.uniform(-5, 60, ROWS).astype(F32)
    return {
        "draws": rng.standard_normal((BLOCKS, ROWS, SIZE), dtype=F32),
        "shared": rng.standard_normal((BLOCKS, SIZE), dtype=F32),
        "own_scale": rng.uniform(2, 20, ROWS).astype(F32),
        "floor": -shift,
        "threshold": rng.uniform(-20, 40, ROWS).astype(F32),
        "shift": shift,
        "center": rng.uniform(-3, 3, ROWS).astype(F32),
    }


def numpy_reference(given: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    column = {name: given[name][:, None] for name in ("own_scale", "floor", "threshold", "shift")}
    floored = (given["draws"] + given["shared"][:, None, :]) * column["own_scale"]
    floored = np.maximum(floored, column["floor"])
    points = floored + column["shift"]
    top = F32(SLOTS - 1)
    slots = np.where(points < top, np.ceil(np.minimum(points, top)), top).astype(np.int64)
    histogram = np.stack([np.bincount(slots[:, r].ravel(), minlength=SLOTS) for r in range(ROWS)])
    return {
        "centred": floored - given["center"][:, None],
        "sums": floored.astype(np.float64).sum(axis=2),
        "maximum": floored.max(axis=(0, 2)),
        "hits": (floored >= column["threshold"]).sum(axis=(0, 2)),
        "histogram": histogram,
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_one_pass_gives_what_numpy_gives_pass_by_pass(seed):
    given = inputs(seed)
    expected = numpy_reference(given)
    out: dict[str, np.ndarray] = {
        "sums": np.empty((BLOCKS, ROWS)),
        "maximum": np.full(ROWS, -np.inf, dtype=F32),
        "hits": np.zeros(ROWS, dtype=np.int64),
        "histogram": np.zeros((ROWS, SLOTS), dtype=np.int64),
        "centred": np.empty((BLOCKS, ROWS, SIZE), dtype=F32),
    }
    kernel.reduce_team_chunk(**given, **out)
    assert np.array_equal(out["centred"], expected["centred"])
    assert np.array_equal(out["maximum"], expected["maximum"])
    assert np.array_equal(out["hits"], expected["hits"])
    assert np.array_equal(out["histogram"], expected["histogram"])
    assert out["histogram"][:, 0].sum() > 0 and out["histogram"][:, -1].sum() > 0
    np.testing.assert_allclose(out["sums"], expected["sums"], rtol=1e-12)
    first = np.empty(ROWS)
    kernel.block_sums(
        given["draws"][0], given["shared"][0], given["own_scale"], given["floor"], first
    )
    assert np.array_equal(first, out["sums"][0])


def test_the_totals_add_up_across_calls():
    given = inputs(4)
    maximum = np.full(ROWS, -np.inf, dtype=F32)
    hits = np.zeros(ROWS, dtype=np.int64)
    histogram = np.zeros((ROWS, SLOTS), dtype=np.int64)
    for _ in range(2):
        kernel.reduce_team_chunk(
            **given,
            sums=np.empty((BLOCKS, ROWS)),
            maximum=maximum,
            hits=hits,
            histogram=histogram,
            centred=np.empty((BLOCKS, ROWS, SIZE), dtype=F32),
        )
    assert histogram.sum() == 2 * BLOCKS * ROWS * SIZE
    assert np.array_equal(hits, 2 * numpy_reference(given)["hits"])


@pytest.mark.parametrize(
    "name, bad",
    [
        ("draws", lambda a: a.astype(np.float64)),
        ("draws", lambda a: a[:, :, ::2]),
        ("shared", lambda a: a[:, 1:]),
        ("hits", lambda a: a.astype(np.int32)),
    ],
)
def test_a_buffer_of_the_wrong_type_or_shape_is_refused_before_c_sees_it(name, bad):
    given = inputs(5)
    arrays = {
        **given,
        "sums": np.empty((BLOCKS, ROWS)),
        "maximum": np.full(ROWS, -np.inf, dtype=F32),
        "hits": np.zeros(ROWS, dtype=np.int64),
        "histogram": np.zeros((ROWS, SLOTS), dtype=np.int64),
        "centred": np.empty((BLOCKS, ROWS, SIZE), dtype=F32),
    }
    arrays[name] = bad(arrays[name])
    with pytest.raises(ValueError, match=name):
        kernel.reduce_team_chunk(**arrays)
