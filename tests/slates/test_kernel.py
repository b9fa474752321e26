"""The C kernel against numpy: its draws against numpy's generator, its pass against numpy
doing the same arithmetic pass by pass (the pipeline before 0.6).

Invariants: from the same SFC64 state the kernel draws numpy's float32 standard normals bit
for bit, ziggurat tail and wedges included, and leaves the state where numpy leaves it; every
float32 value of the pass (the floored draws, their centred copy, the maximum) is
bit-identical to numpy's; the hits and every histogram slot are the same integers; the float64
sums agree to rounding; drawing inside the pass gives what the pass gives on numpy's draws;
bad buffers are refused before C sees them.
"""

from __future__ import annotations

import numpy as np
import pytest

from app.slates import kernel

F32 = np.float32
BLOCKS, ROWS, SIZE, SLOTS = 3, 7, 1000, 65
# The ziggurat's tail starts here; beyond it a draw takes the rare path.
TAIL = 3.6541528853610088


def sfc64(seed: int, spare_half: bool) -> np.random.Generator:
    """A block-seeded SFC64 generator; with ``spare_half`` its next 32 bits are the upper
    half of a word already drawn (numpy keeps them), the state the kernel must honour."""
    generator = np.random.Generator(np.random.SFC64(np.random.SeedSequence([seed, 0])))
    if spare_half:
        generator.standard_normal(1, dtype=F32)
    assert generator.bit_generator.state["has_uint32"] == int(spare_half)
    return generator


@pytest.mark.parametrize("seed, spare_half", [(1, False), (2, True), (3, False), (4, True)])
def test_the_kernel_draws_numpys_normals_bit_for_bit_and_leaves_its_state(seed, spare_half):
    generator = sfc64(seed, spare_half)
    state = kernel.generator_states([generator])[0]
    drawn = np.empty((2, 1_000_000), dtype=F32)
    kernel.standard_normals(state, drawn)
    expected = generator.standard_normal(drawn.shape, dtype=F32)
    assert np.array_equal(drawn.view(np.uint32), expected.view(np.uint32))
    assert np.count_nonzero(np.abs(drawn) > TAIL) > 100  # the tail's path was taken
    assert np.array_equal(state, kernel.generator_states([generator])[0])


def test_only_sfc64_generators_are_taken():
    with pytest.raises(ValueError, match="PCG64"):
        kernel.generator_states([np.random.default_rng(1)])


def test_drawing_inside_the_pass_gives_what_the_pass_gives_on_numpys_draws():
    given = inputs(6)
    generators = [sfc64(seed, spare_half=seed % 2 == 1) for seed in range(BLOCKS)]
    states = kernel.generator_states(generators)
    given["source"] = np.stack([g.standard_normal((ROWS, SIZE), dtype=F32) for g in generators])
    outputs: list[dict[str, np.ndarray]] = []
    for source in (given["source"], states):
        out = empty_outputs()
        kernel.reduce_team_chunk(**{**given, "source": source}, **out)
        outputs.append(out)
    drawn, generated = outputs
    for name in drawn:
        assert np.array_equal(drawn[name], generated[name]), name
    assert np.array_equal(states, kernel.generator_states(generators))


def inputs(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    # Players from nearly always floored to never, some beyond the histogram's top; the floor
    # is where the points are 0, as the plan sets it.
    shift = rng.uniform(-5, 60, ROWS).astype(F32)
    return {
        "source": rng.standard_normal((BLOCKS, ROWS, SIZE), dtype=F32),
        "shared": rng.standard_normal((BLOCKS, SIZE), dtype=F32),
        "own_scale": rng.uniform(2, 20, ROWS).astype(F32),
        "floor": -shift,
        "threshold": rng.uniform(-20, 40, ROWS).astype(F32),
        "shift": shift,
        "center": rng.uniform(-3, 3, ROWS).astype(F32),
    }


def empty_outputs() -> dict[str, np.ndarray]:
    """What the pass writes or adds to, before its first call."""
    return {
        "sums": np.empty((BLOCKS, ROWS)),
        "maximum": np.full(ROWS, -np.inf, dtype=F32),
        "hits": np.zeros(ROWS, dtype=np.int64),
        "histogram": np.zeros((ROWS, SLOTS), dtype=np.int64),
        "centred": np.empty((BLOCKS, ROWS, SIZE), dtype=F32),
    }


def numpy_reference(given: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    column = {name: given[name][:, None] for name in ("own_scale", "floor", "threshold", "shift")}
    floored = (given["source"] + given["shared"][:, None, :]) * column["own_scale"]
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
    out = empty_outputs()
    kernel.reduce_team_chunk(**given, **out)
    assert np.array_equal(out["centred"], expected["centred"])
    assert np.array_equal(out["maximum"], expected["maximum"])
    assert np.array_equal(out["hits"], expected["hits"])
    assert np.array_equal(out["histogram"], expected["histogram"])
    assert out["histogram"][:, 0].sum() > 0 and out["histogram"][:, -1].sum() > 0
    np.testing.assert_allclose(out["sums"], expected["sums"], rtol=1e-12)
    # The simulation reduces the chunk of block 0 uncentred and centres it afterwards.
    uncentred = empty_outputs()
    kernel.reduce_team_chunk(**{**given, "center": np.zeros(ROWS, dtype=F32)}, **uncentred)
    uncentred["centred"] -= given["center"][:, None]
    assert np.array_equal(uncentred["centred"], out["centred"])


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
        ("source", lambda a: a.astype(np.float64)),
        ("source", lambda a: a[:, :, ::2]),
        ("source", lambda a: np.zeros((BLOCKS, kernel.GENERATOR_WORDS - 1), dtype=np.uint64)),
        ("shared", lambda a: a[:, 1:]),
        ("hits", lambda a: a.astype(np.int32)),
    ],
)
def test_a_buffer_of_the_wrong_type_or_shape_is_refused_before_c_sees_it(name, bad):
    given = inputs(5)
    arrays = {
        **given,
        **empty_outputs(),
    }
    arrays[name] = bad(arrays[name])
    with pytest.raises(ValueError, match=name):
        kernel.reduce_team_chunk(**arrays)
