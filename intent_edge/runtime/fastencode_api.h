/* The encoder fast path's C API (_fastencode.c), for the native backend (_native.c), which encodes a
 * record and runs the network in one call. _fastencode publishes a FastEncodeApi as the capsule
 * FASTENCODE_API_CAPSULE; a caller imports it with PyCapsule_Import and checks the version. */
#ifndef INTENT_EDGE_FASTENCODE_API_H
#define INTENT_EDGE_FASTENCODE_API_H

#include <Python.h>

#define FASTENCODE_API_VERSION 1
#define FASTENCODE_API_CAPSULE "intent_edge.runtime._fastencode._C_API"

typedef struct {
    int version;
    /* 1: `row` (width floats) holds the encoded record; 0: the checked path must take it (nothing
     * written); -1: an exception is set (a broken plan, or one raised by the record's own keys). */
    int (*encode_into)(PyObject *plan, PyObject *record, float *row, Py_ssize_t width);
} FastEncodeApi;

#endif
