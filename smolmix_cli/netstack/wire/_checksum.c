/* The internet checksum's ones'-complement sum (RFC 1071) in C.
 *
 * Optional accelerator for checksum.py: the pure-Python form (one big-integer
 * reduction) costs ~3 us per 1.4 KB segment, and every segment is summed once
 * when sent and once when received. The stacks are CPU-bound at LAN speeds:
 * with this sum they execute 22 % fewer instructions per MiB lossless and 14 %
 * fewer at 5 % loss (callgrind, bench/README.md). Same contract
 * as checksum.ones_complement_sum: each part starts on a 16-bit boundary, an
 * odd-length part is padded with one zero byte, and the result is in
 * 0..0xFFFF with only all-zero input summing to 0.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static uint64_t
sum_be(const unsigned char *p, Py_ssize_t n)
{
    uint64_t acc = 0;
    /* Big-endian 32-bit words: 2**16 == 1 (mod 0xFFFF), so summing 32-bit words
     * and folding later equals summing 16-bit words. A uint64_t cannot overflow
     * below 2**32 words, far beyond any buffer we are given. */
    while (n >= 4) {
        uint32_t w;
        memcpy(&w, p, 4);
#if PY_LITTLE_ENDIAN
        w = __builtin_bswap32(w);
#endif
        acc += w;
        p += 4;
        n -= 4;
    }
    if (n >= 2) {
        acc += ((uint32_t)p[0] << 8) | p[1];
        p += 2;
        n -= 2;
    }
    if (n) {
        acc += (uint32_t)p[0] << 8; /* odd tail, padded with a zero byte */
    }
    return acc;
}

static PyObject *
ones_complement_sum(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t total = 0;
    for (Py_ssize_t i = 0; i < nargs; i++) {
        Py_buffer view;
        if (PyObject_GetBuffer(args[i], &view, PyBUF_SIMPLE) < 0) {
            return NULL;
        }
        total += sum_be((const unsigned char *)view.buf, view.len);
        PyBuffer_Release(&view);
    }
    while (total >> 16) {
        total = (total & 0xFFFF) + (total >> 16);
    }
    return PyLong_FromUnsignedLong((unsigned long)total);
}

static PyMethodDef methods[] = {
    {"ones_complement_sum", (PyCFunction)(void (*)(void))ones_complement_sum, METH_FASTCALL,
     "Ones'-complement sum of the parts' 16-bit big-endian words (0..0xFFFF)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_checksum", "Internet checksum sum in C (optional).", -1, methods,
};

PyMODINIT_FUNC
PyInit__checksum(void)
{
    return PyModule_Create(&module);
}
