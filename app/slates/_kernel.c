/* The simulation's kernel: each team chunk's normals drawn and reduced in one pass
 * (app/slates/kernel.py says why C, and what the pass computes).
 *
 * The draws. Each block has its own SFC64 generator (numpy's, seeded by simulation.py, which
 * draws the shared game and team terms with it and then hands its state over). The kernel
 * steps that state itself and turns it into float32 standard normals with the 256-layer
 * ziggurat that numpy's Generator.standard_normal(dtype=float32) uses, on the same bits in
 * the same order, so a block's draws are numpy's own, value for value; it only skips numpy's
 * per-value indirect calls and never writes the draws to memory. The ziggurat's tables are
 * computed here at import (Marsaglia and Tsang's recurrence, r = 3.6541528853610088,
 * v = 4.92867323399e-3, the ratios rounded to the nearest integer), and the tests check the
 * draws against numpy's.
 *
 * The pass. Every draw is touched once, in a register: the shared term added, the player's
 * scale applied, the floor at zero, then the float64 running sum, the maximum, the
 * value-target count, the histogram slot, and the draw centred for the teammates' products
 * (which BLAS does next).
 *
 * Plain C over the buffers numpy hands in (the buffer protocol: no numpy headers needed to
 * build), the GIL released while it runs, so job threads run it beside requests and each
 * other. Built with -ffp-contract=off and no fast-math: every operation is the IEEE one in
 * source order, the same as numpy's float32 arithmetic, so a block's figures do not depend on
 * the compiler, the CPU or the chunking.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>

/* ---- Draws ------------------------------------------------------------------------------ */

#define LAYERS 256
static const double ZIGGURAT_R = 3.6541528853610088;   /* start of the tail */
static const double ZIGGURAT_V = 4.92867323399e-3;     /* area of each layer */
static const double MANTISSA = 8388608.0;              /* 2^23: 23 bits of magnitude */

static uint32_t layer_ratio[LAYERS]; /* below it, a draw is inside the layer's rectangle */
static float layer_width[LAYERS];    /* magnitude bits -> x */
static float layer_density[LAYERS];  /* exp(-x^2 / 2) at the layer's edge */
static float tail_start, inverse_tail_start;

static void build_tables(void) {
    double edge = ZIGGURAT_R, previous = edge;
    const double base = ZIGGURAT_V / exp(-0.5 * edge * edge);
    layer_ratio[0] = (uint32_t)llround(edge / base * MANTISSA);
    layer_ratio[1] = 0;
    layer_width[0] = (float)(base / MANTISSA);
    layer_width[LAYERS - 1] = (float)(edge / MANTISSA);
    layer_density[0] = 1.0f;
    layer_density[LAYERS - 1] = (float)exp(-0.5 * edge * edge);
    for (int i = LAYERS - 2; i >= 1; i--) {
        edge = sqrt(-2.0 * log(ZIGGURAT_V / edge + exp(-0.5 * edge * edge)));
        layer_ratio[i + 1] = (uint32_t)llround(edge / previous * MANTISSA);
        previous = edge;
        layer_density[i] = (float)exp(-0.5 * edge * edge);
        layer_width[i] = (float)(edge / MANTISSA);
    }
    tail_start = (float)ZIGGURAT_R;
    inverse_tail_start = (float)(1.0 / ZIGGURAT_R);
}

/* One block's generator: numpy's SFC64 state (four words) and its spare upper half, as
 * six uint64 in the order kernel.py packs them. */
typedef struct {
    uint64_t word[4];
    uint64_t has_half;
    uint64_t half;
} Generator;

static inline uint64_t next64(Generator *g) {
    uint64_t *s = g->word;
    const uint64_t out = s[0] + s[1] + s[3]++;
    s[0] = s[1] ^ (s[1] >> 11);
    s[1] = s[2] + (s[2] << 3);
    s[2] = ((s[2] << 24) | (s[2] >> 40)) + out;
    return out;
}

/* 32 bits, the lower half of a fresh word first and its upper half next, as numpy does. */
static inline uint32_t next32(Generator *g) {
    if (g->has_half) {
        g->has_half = 0;
        return (uint32_t)g->half;
    }
    const uint64_t word = next64(g);
    g->has_half = 1;
    g->half = word >> 32;
    return (uint32_t)word;
}

static inline float next_unit(Generator *g) { return (next32(g) >> 8) * (1.0f / 16777216.0f); }

/* The ziggurat's rare branches (under 1% of draws): the tail beyond ZIGGURAT_R and the
 * wedges. Returns 1 and sets *value when the draw is accepted, 0 to draw again. Inlined, so
 * the generator's address never escapes and its state stays in registers. */
static inline int rare_draw(Generator *g, uint32_t magnitude, uint32_t layer,
                                               float x, float *value) {
    if (layer == 0) {
        for (;;) {
            const float xx = -inverse_tail_start * log1pf(-next_unit(g));
            const float yy = -log1pf(-next_unit(g));
            if (yy + yy > xx * xx) {
                *value = ((magnitude >> 8) & 0x1) ? -(tail_start + xx) : tail_start + xx;
                return 1;
            }
        }
    }
    const float height = (layer_density[layer - 1] - layer_density[layer]) * next_unit(g) +
                         layer_density[layer];
    if (height < exp(-0.5 * x * x)) {
        *value = x;
        return 1;
    }
    return 0;
}

static inline float next_normal(Generator *g) {
    for (;;) {
        const uint32_t r = next32(g);
        const uint32_t layer = r & 0xff;
        const uint32_t magnitude = (r >> 9) & 0x7fffff;
        /* The sign from bit 8, flipped without a branch (a coin toss mispredicts half the
         * time): the same value as numpy's negation. */
        union { float f; uint32_t u; } x = {.f = magnitude * layer_width[layer]};
        x.u ^= (r & 0x100) << 23;
        if (__builtin_expect(magnitude < layer_ratio[layer], 1)) return x.f;
        float value;
        if (rare_draw(g, magnitude, layer, x.f, &value)) return value;
    }
}

/* ---- The pass --------------------------------------------------------------------------- */

/* The slot of a point value in bin units (>= 0): 0 exactly at 0, k for (k - 1, k], the last
 * slot for everything from `top` up. */
static inline int64_t slot_of(float points, float top, int64_t top_slot) {
    if (!(points < top)) return top_slot;
    int64_t slot = (int64_t)points; /* truncation: points >= 0 */
    return slot + ((float)slot < points);
}

typedef struct {
    const float *shared, *own_scale, *floor_, *threshold, *shift, *center;
    double *sums;
    float *maximum;
    int64_t *hits, *histogram;
    float *centred;
    Py_ssize_t rows, size, slots;
} Pass;

/* One block of one team: `draws` (rows x size) when given, else drawn from `g` in the same
 * row-major order numpy fills an array. Inlined twice, so each copy has one source. */
static inline __attribute__((always_inline)) void reduce_block(const Pass *p, Py_ssize_t b,
                                                               const float *draws,
                                                               Generator *g) {
    const int64_t top_slot = p->slots - 1;
    const float top = (float)top_slot;
    const float *common = p->shared + b * p->size;
    for (Py_ssize_t r = 0; r < p->rows; r++) {
        const float *row = draws ? draws + r * p->size : NULL;
        float *out = p->centred + (b * p->rows + r) * p->size;
        int64_t *counts = p->histogram + r * p->slots;
        const float scale = p->own_scale[r], low = p->floor_[r], target = p->threshold[r];
        const float to_bins = p->shift[r], middle = p->center[r];
        double total = 0.0;
        float highest = p->maximum[r];
        int64_t reached = 0;
        for (Py_ssize_t s = 0; s < p->size; s++) {
            const float raw = row ? row[s] : next_normal(g);
            float value = (raw + common[s]) * scale;
            if (value < low) value = low;
            total += value;
            if (value > highest) highest = value;
            reached += value >= target;
            out[s] = value - middle;
            counts[slot_of(value + to_bins, top, top_slot)] += 1;
        }
        p->sums[b * p->rows + r] = total;
        p->maximum[r] = highest;
        p->hits[r] += reached;
    }
}

static void reduce_drawn(const Pass *p, const float *draws, Py_ssize_t blocks) {
    for (Py_ssize_t b = 0; b < blocks; b++) reduce_block(p, b, draws + b * p->rows * p->size, NULL);
}

static void reduce_generated(const Pass *p, Generator *generators, Py_ssize_t blocks) {
    for (Py_ssize_t b = 0; b < blocks; b++) {
        Generator local = generators[b]; /* in registers, not behind the histogram's stores */
        reduce_block(p, b, NULL, &local);
        generators[b] = local;
    }
}

/* ---- Python entry points (buffers checked by kernel.py: C-contiguous, dtype, shape) ----- */

static PyObject *reduce_team_chunk(PyObject *self, PyObject *args) {
    Py_buffer v[12];
    Py_ssize_t blocks, rows, size, slots;
    int generate;
    if (!PyArg_ParseTuple(args, "w*y*y*y*y*y*y*w*w*w*w*w*nnnnp", &v[0], &v[1], &v[2], &v[3],
                          &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10], &v[11], &blocks,
                          &rows, &size, &slots, &generate))
        return NULL;
    const Pass pass = {v[1].buf, v[2].buf, v[3].buf, v[4].buf, v[5].buf,  v[6].buf,
                       v[7].buf, v[8].buf, v[9].buf, v[10].buf, v[11].buf, rows, size, slots};
    Py_BEGIN_ALLOW_THREADS
    if (generate)
        reduce_generated(&pass, v[0].buf, blocks);
    else
        reduce_drawn(&pass, v[0].buf, blocks);
    Py_END_ALLOW_THREADS
    for (int i = 0; i < 12; i++) PyBuffer_Release(&v[i]);
    Py_RETURN_NONE;
}

static PyObject *standard_normals(PyObject *self, PyObject *args) {
    Py_buffer state, out;
    Py_ssize_t count;
    if (!PyArg_ParseTuple(args, "w*w*n", &state, &out, &count)) return NULL;
    Generator g = *(Generator *)state.buf; /* a local copy stays in registers */
    float *values = out.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < count; i++) values[i] = next_normal(&g);
    Py_END_ALLOW_THREADS
    *(Generator *)state.buf = g;
    PyBuffer_Release(&state);
    PyBuffer_Release(&out);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"reduce_team_chunk", reduce_team_chunk, METH_VARARGS,
     "One team's chunk in one pass, its draws given or drawn."},
    {"standard_normals", standard_normals, METH_VARARGS,
     "Float32 standard normals from one generator's state, which it advances."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernel",
                                    "The simulation's one-pass kernel.", -1, methods};

PyMODINIT_FUNC PyInit__kernel(void) {
    build_tables();
    return PyModule_Create(&module);
}
