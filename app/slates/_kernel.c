/* The simulation's kernel: one pass over a team's draws per chunk (app/slates/kernel.py).
 *
 * After numpy's SFC64 has drawn a chunk's standard normals, every draw is touched once, while
 * it is in a register: the shared game and team term added, the player's scale applied, the
 * floor at zero, then the float64 running sum, the maximum, the value-target count, the
 * histogram slot, and the draw centred for the teammates' products (which BLAS does next).
 *
 * Plain C over the buffers numpy hands in (the buffer protocol: no numpy headers needed to
 * build), the GIL released while it runs, so job threads run it beside requests and each
 * other. Built with -ffp-contract=off and no fast-math: every operation is the IEEE one in
 * source order, the same as numpy's float32 arithmetic, so a block's figures do not depend on
 * the compiler, the CPU or the chunking.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* The slot of a point value in bin units (>= 0): 0 exactly at 0, k for (k - 1, k], the last
 * slot for everything from `top` up. */
static inline int64_t slot_of(float points, float top, int64_t top_slot) {
    if (!(points < top)) return top_slot;
    int64_t slot = (int64_t)points; /* truncation: points >= 0 */
    return slot + ((float)slot < points);
}

static void reduce_chunk(const float *draws, const float *shared, const float *own_scale,
                         const float *floor_, const float *threshold, const float *shift,
                         const float *center, double *sums, float *maximum, int64_t *hits,
                         int64_t *histogram, float *centred, Py_ssize_t blocks, Py_ssize_t rows,
                         Py_ssize_t size, Py_ssize_t slots) {
    const int64_t top_slot = slots - 1;
    const float top = (float)top_slot;
    for (Py_ssize_t b = 0; b < blocks; b++) {
        const float *common = shared + b * size;
        for (Py_ssize_t r = 0; r < rows; r++) {
            const float *row = draws + (b * rows + r) * size;
            float *out = centred + (b * rows + r) * size;
            int64_t *counts = histogram + r * slots;
            const float scale = own_scale[r], low = floor_[r], target = threshold[r];
            const float to_bins = shift[r], middle = center[r];
            double total = 0.0;
            float highest = maximum[r];
            int64_t reached = 0;
            for (Py_ssize_t s = 0; s < size; s++) {
                float value = (row[s] + common[s]) * scale;
                if (value < low) value = low;
                total += value;
                if (value > highest) highest = value;
                reached += value >= target;
                out[s] = value - middle;
                counts[slot_of(value + to_bins, top, top_slot)] += 1;
            }
            sums[b * rows + r] = total;
            maximum[r] = highest;
            hits[r] += reached;
        }
    }
}

static void block_row_sums(const float *draws, const float *shared, const float *own_scale,
                           const float *floor_, double *sums, Py_ssize_t rows, Py_ssize_t size) {
    for (Py_ssize_t r = 0; r < rows; r++) {
        const float *row = draws + r * size;
        const float scale = own_scale[r], low = floor_[r];
        double total = 0.0;
        for (Py_ssize_t s = 0; s < size; s++) {
            float value = (row[s] + shared[s]) * scale;
            if (value < low) value = low;
            total += value;
        }
        sums[r] = total;
    }
}

/* Buffers are checked by the Python wrapper (kernel.py): C-contiguous, dtype and shape. */
static PyObject *reduce_team_chunk(PyObject *self, PyObject *args) {
    Py_buffer v[12];
    Py_ssize_t blocks, rows, size, slots;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*y*w*w*w*w*w*nnnn", &v[0], &v[1], &v[2], &v[3],
                          &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10], &v[11], &blocks,
                          &rows, &size, &slots))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    reduce_chunk(v[0].buf, v[1].buf, v[2].buf, v[3].buf, v[4].buf, v[5].buf, v[6].buf,
                 v[7].buf, v[8].buf, v[9].buf, v[10].buf, v[11].buf, blocks, rows, size, slots);
    Py_END_ALLOW_THREADS
    for (int i = 0; i < 12; i++) PyBuffer_Release(&v[i]);
    Py_RETURN_NONE;
}

static PyObject *block_sums(PyObject *self, PyObject *args) {
    Py_buffer v[5];
    Py_ssize_t rows, size;
    if (!PyArg_ParseTuple(args, "y*y*y*y*w*nn", &v[0], &v[1], &v[2], &v[3], &v[4], &rows,
                          &size))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    block_row_sums(v[0].buf, v[1].buf, v[2].buf, v[3].buf, v[4].buf, rows, size);
    Py_END_ALLOW_THREADS
    for (int i = 0; i < 5; i++) PyBuffer_Release(&v[i]);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"reduce_team_chunk", reduce_team_chunk, METH_VARARGS, "One team's chunk in one pass."},
    {"block_sums", block_sums, METH_VARARGS, "Each row's float64 sum of one floored block."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernel",
                                    "The simulation's one-pass kernel.", -1, methods};

PyMODINIT_FUNC PyInit__kernel(void) { return PyModule_Create(&module); }
