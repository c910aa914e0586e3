/* The native backend: a session model's network run in process by the same kernel the C export ships
 * (kernel/ie_kernel.h, included here as it is copied there), so both give the same bits.
 *
 * make_network(layers) takes a sequence of (weights, bias, activation): weights a C-contiguous float32
 * buffer of inputs x outputs, bias a float32 buffer of outputs, activation as ie_kernel.h numbers them;
 * it copies them and returns a capsule. infer_one(network, row) returns the probability of one encoded
 * float32 row; infer(network, matrix, out) writes the probability of each row of a float32 matrix into
 * out (float32, one per row), without the GIL. Buffers of the wrong size or type raise ValueError.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>
#include <string.h>

#include "fastencode_api.h"
#include "kernel/ie_kernel.h"

typedef struct {
    int inputs, outputs, activation;
    float *weights, *bias;
} Layer;

typedef struct {
    int inputs, outputs, input_zero_point, output_zero_point, low, high;
    int8_t *weights;
    int32_t *bias, *multipliers;
    int *shifts;
} Int8Layer;

typedef struct {
    int count, width, widest;
    Layer *layers;
    /* a LiteRT full-integer model instead (int8_layers not NULL): quantised input, int8 layers, a table */
    Int8Layer *int8_layers;
    double input_scale, output_scale;
    int input_zero_point, output_zero_point;
    int8_t logistic[256];
} Network;

static const char *CAPSULE = "intent_edge.native.network";

static void network_free(Network *network) {
    if (network == NULL) return;
    for (int i = 0; network->layers != NULL && i < network->count; i++) {
        PyMem_Free(network->layers[i].weights);
        PyMem_Free(network->layers[i].bias);
    }
    for (int i = 0; network->int8_layers != NULL && i < network->count; i++) {
        PyMem_Free(network->int8_layers[i].weights);
        PyMem_Free(network->int8_layers[i].bias);
        PyMem_Free(network->int8_layers[i].multipliers);
        PyMem_Free(network->int8_layers[i].shifts);
    }
    PyMem_Free(network->layers);
    PyMem_Free(network->int8_layers);
    PyMem_Free(network);
}

static void capsule_free(PyObject *capsule) {
    network_free((Network *)PyCapsule_GetPointer(capsule, CAPSULE));
}

/* a copy of a buffer of exactly `count` items of `itemsize` bytes and struct format `format` (one of
 * the spellings given, separated by '|'), or NULL with ValueError set */
static void *copy_items(PyObject *source, Py_ssize_t count, Py_ssize_t itemsize, const char *formats,
                        const char *what) {
    Py_buffer view;
    void *copy;
    char wanted[16];
    int known = 0;
    if (PyObject_GetBuffer(source, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return NULL;
    for (const char *start = formats; view.format != NULL && *start && !known;) {
        const char *end = strchr(start, '|');
        size_t length = end ? (size_t)(end - start) : strlen(start);
        if (length < sizeof wanted) {
            memcpy(wanted, start, length);
            wanted[length] = 0;
            known = strcmp(view.format, wanted) == 0;
        }
        start = end ? end + 1 : start + length;
    }
    if (view.itemsize != itemsize || !known || view.len != count * itemsize) {
        PyBuffer_Release(&view);
        PyErr_Format(PyExc_ValueError, "%s: expected %zd contiguous values of %zd bytes", what, count, itemsize);
        return NULL;
    }
    copy = PyMem_Malloc((size_t)view.len);
    if (copy == NULL) {
        PyBuffer_Release(&view);
        PyErr_NoMemory();
        return NULL;
    }
    memcpy(copy, view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return copy;
}

static float *copy_floats(PyObject *source, Py_ssize_t count, const char *what) {
    return copy_items(source, count, 4, "f", what);
}

static PyObject *make_network(PyObject *self, PyObject *args) {
    PyObject *layers, *sequence;
    int inputs;
    Network *network;
    (void)self;
    if (!PyArg_ParseTuple(args, "iO", &inputs, &layers)) return NULL;
    sequence = PySequence_Fast(layers, "layers must be a sequence of (weights, bias, activation)");
    if (sequence == NULL) return NULL;
    network = PyMem_Calloc(1, sizeof(Network));
    if (network == NULL) { Py_DECREF(sequence); return PyErr_NoMemory(); }
    network->count = (int)PySequence_Fast_GET_SIZE(sequence);
    network->width = inputs;
    network->widest = inputs;
    network->layers = PyMem_Calloc((size_t)network->count ? (size_t)network->count : 1, sizeof(Layer));
    if (network->layers == NULL || network->count == 0) {
        Py_DECREF(sequence);
        network_free(network);
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "a network needs at least one layer");
        return NULL;
    }
    for (int i = 0; i < network->count; i++) {
        PyObject *weights, *bias;
        int outputs, activation;
        Layer *layer = &network->layers[i];
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(sequence, i), "OOii", &weights, &bias, &outputs, &activation)
            || outputs < 1 || activation < IE_ACTIVATION_NONE || activation > IE_ACTIVATION_SIGMOID) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "a layer needs outputs >= 1 and a known activation");
            Py_DECREF(sequence);
            network_free(network);
            return NULL;
        }
        layer->inputs = inputs;
        layer->outputs = outputs;
        layer->activation = activation;
        layer->weights = copy_floats(weights, (Py_ssize_t)inputs * outputs, "weights");
        layer->bias = layer->weights == NULL ? NULL : copy_floats(bias, outputs, "bias");
        if (layer->bias == NULL) {
            Py_DECREF(sequence);
            network_free(network);
            return NULL;
        }
        if (outputs > network->widest) network->widest = outputs;
        inputs = outputs;
    }
    Py_DECREF(sequence);
    if (inputs != 1) {
        network_free(network);
        PyErr_SetString(PyExc_ValueError, "the last layer must have one output (the probability)");
        return NULL;
    }
    PyObject *capsule = PyCapsule_New(network, CAPSULE, capsule_free);
    if (capsule == NULL) network_free(network);
    return capsule;
}

/* make_int8_network(inputs, (input_scale, input_zero_point, output_scale, output_zero_point), logistic,
 * layers): logistic 256 int8 values; layers a sequence of (weights int8 [outputs x inputs], bias int32,
 * multipliers int32, shifts int32, outputs, input zero point, output zero point, low, high). */
static PyObject *make_int8_network(PyObject *self, PyObject *args) {
    PyObject *layers, *sequence, *logistic;
    int inputs;
    double input_scale, output_scale;
    int input_zero_point, output_zero_point;
    Network *network;
    int8_t *table;
    (void)self;
    if (!PyArg_ParseTuple(args, "i(didi)OO", &inputs, &input_scale, &input_zero_point, &output_scale,
                          &output_zero_point, &logistic, &layers))
        return NULL;
    sequence = PySequence_Fast(layers, "layers must be a sequence");
    if (sequence == NULL) return NULL;
    network = PyMem_Calloc(1, sizeof(Network));
    if (network == NULL) { Py_DECREF(sequence); return PyErr_NoMemory(); }
    network->count = (int)PySequence_Fast_GET_SIZE(sequence);
    network->width = network->widest = inputs;
    network->input_scale = input_scale;
    network->output_scale = output_scale;
    network->input_zero_point = input_zero_point;
    network->output_zero_point = output_zero_point;
    network->int8_layers = PyMem_Calloc(network->count ? (size_t)network->count : 1, sizeof(Int8Layer));
    table = copy_items(logistic, 256, 1, "b", "logistic");
    if (table == NULL || network->int8_layers == NULL || network->count == 0) {
        PyMem_Free(table);
        Py_DECREF(sequence);
        network_free(network);
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "an int8 network needs a table and layers");
        return NULL;
    }
    memcpy(network->logistic, table, 256);
    PyMem_Free(table);
    for (int i = 0; i < network->count; i++) {
        PyObject *weights, *bias, *multipliers, *shifts;
        Int8Layer *layer = &network->int8_layers[i];
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(sequence, i), "OOOOiiiii", &weights, &bias, &multipliers,
                              &shifts, &layer->outputs, &layer->input_zero_point, &layer->output_zero_point,
                              &layer->low, &layer->high) || layer->outputs < 1) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "an int8 layer needs outputs >= 1");
            Py_DECREF(sequence);
            network_free(network);
            return NULL;
        }
        layer->inputs = inputs;
        layer->weights = copy_items(weights, (Py_ssize_t)inputs * layer->outputs, 1, "b", "weights");
        layer->bias = layer->weights ? copy_items(bias, layer->outputs, 4, "i|l|=i|<i", "bias") : NULL;
        layer->multipliers = layer->bias ? copy_items(multipliers, layer->outputs, 4, "i|l|=i|<i", "multipliers")
                                         : NULL;
        layer->shifts = layer->multipliers ? copy_items(shifts, layer->outputs, sizeof(int), "i|l|=i|<i", "shifts")
                                           : NULL;
        if (layer->shifts == NULL) {
            Py_DECREF(sequence);
            network_free(network);
            return NULL;
        }
        for (int o = 0; o < layer->outputs; o++) {
            if (31 - layer->shifts[o] < 1 || 31 - layer->shifts[o] > 62) {
                Py_DECREF(sequence);
                network_free(network);
                PyErr_SetString(PyExc_ValueError, "a requantisation shift is out of range");
                return NULL;
            }
        }
        if (layer->outputs > network->widest) network->widest = layer->outputs;
        inputs = layer->outputs;
    }
    Py_DECREF(sequence);
    if (inputs != 1) {
        network_free(network);
        PyErr_SetString(PyExc_ValueError, "the last layer must have one output (the logit)");
        return NULL;
    }
    PyObject *capsule = PyCapsule_New(network, CAPSULE, capsule_free);
    if (capsule == NULL) network_free(network);
    return capsule;
}

/* The int8 path: the float row quantised, the integer layers, the logistic table, dequantised; scratch
 * holds 2 * widest floats, which is room for the int8 buffers too. */
static float run_int8(const Network *network, const float *row, float *scratch) {
    int8_t *buffers[2] = {(int8_t *)scratch, (int8_t *)scratch + 4 * network->widest};
    const int8_t *in = buffers[0];
    ie_quantize(row, network->width, network->input_scale, network->input_zero_point, buffers[0]);
    for (int i = 0; i < network->count; i++) {
        const Int8Layer *layer = &network->int8_layers[i];
        int8_t *out = buffers[(i + 1) % 2];
        ie_dense_int8(in, layer->inputs, layer->input_zero_point, layer->weights, layer->bias, layer->multipliers,
                      layer->shifts, layer->output_zero_point, layer->low, layer->high, layer->outputs, out);
        in = out;
    }
    return (float)(network->output_scale * (network->logistic[in[0] + 128] - network->output_zero_point));
}

/* One row through every layer; `scratch` holds 2 * widest floats. */
static float run(const Network *network, const float *row, float *scratch) {
    if (network->int8_layers != NULL) return run_int8(network, row, scratch);
    const float *in = row;
    float *buffers[2] = {scratch, scratch + network->widest};
    for (int i = 0; i < network->count; i++) {
        const Layer *layer = &network->layers[i];
        float *out = buffers[i % 2];
        ie_dense(in, layer->inputs, layer->weights, layer->bias, layer->outputs, layer->activation, out);
        in = out;
    }
    return in[0];
}

static Network *network_of(PyObject *capsule) {
    return (Network *)PyCapsule_GetPointer(capsule, CAPSULE);
}

#define SMALL_SCRATCH 1024  /* floats on the stack for a network up to 512 units wide */

static PyObject *infer_one(PyObject *self, PyObject *args) {
    PyObject *capsule, *source;
    Py_buffer view;
    float small[SMALL_SCRATCH], *scratch = small, probability;
    Network *network;
    (void)self;
    if (!PyArg_ParseTuple(args, "OO", &capsule, &source) || (network = network_of(capsule)) == NULL) return NULL;
    if (PyObject_GetBuffer(source, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return NULL;
    if (view.itemsize != 4 || strcmp(view.format, "f") != 0 || view.len != (Py_ssize_t)network->width * 4) {
        PyBuffer_Release(&view);
        return PyErr_Format(PyExc_ValueError, "expected one float32 row of %d values", network->width);
    }
    if (2 * network->widest > SMALL_SCRATCH && (scratch = PyMem_Malloc(8 * (size_t)network->widest)) == NULL) {
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    probability = run(network, (const float *)view.buf, scratch);
    if (scratch != small) PyMem_Free(scratch);
    PyBuffer_Release(&view);
    return PyFloat_FromDouble((double)probability);
}

static PyObject *infer(PyObject *self, PyObject *args) {
    PyObject *capsule, *source, *target;
    Py_buffer in, out;
    Network *network;
    float *scratch;
    Py_ssize_t rows;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOO", &capsule, &source, &target) || (network = network_of(capsule)) == NULL)
        return NULL;
    if (PyObject_GetBuffer(source, &in, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return NULL;
    if (PyObject_GetBuffer(target, &out, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&in);
        return NULL;
    }
    rows = out.len / 4;
    if (in.itemsize != 4 || strcmp(in.format, "f") != 0 || out.itemsize != 4 || strcmp(out.format, "f") != 0
        || in.len != rows * network->width * 4) {
        PyBuffer_Release(&in);
        PyBuffer_Release(&out);
        return PyErr_Format(PyExc_ValueError, "expected a float32 matrix of %d columns and one float32 output a row",
                            network->width);
    }
    scratch = PyMem_RawMalloc(8 * (size_t)network->widest);
    if (scratch == NULL) {
        PyBuffer_Release(&in);
        PyBuffer_Release(&out);
        return PyErr_NoMemory();
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t r = 0; r < rows; r++)
        ((float *)out.buf)[r] = run(network, (const float *)in.buf + r * network->width, scratch);
    Py_END_ALLOW_THREADS
    PyMem_RawFree(scratch);
    PyBuffer_Release(&in);
    PyBuffer_Release(&out);
    Py_RETURN_NONE;
}

/* A network joined with the encoder's fast-path plan (fastencode_api.h): one call from a raw record to
 * its probability, with the row and the scratch on the stack, so the call is reentrant and thread-safe.
 * fuse(network, plan, checked) returns that call as a function of one argument; a record the fast path
 * does not take goes to checked(record), the Predictor's checked path. */
#define FUSED_MAX_WIDTH 1024

/* Monitoring inside the fused call (runtime/monitor.py compiles the plan): each record's bin per field and
 * for its score, counted straight into the Monitor's int64 array, so that watching costs nanoseconds.
 * The GIL is held throughout the call, so a count never interleaves with another thread's. */
typedef struct {
    int n_numeric, n_edges, n_categorical, n_score_edges;
    int *numeric;      /* per numeric field: column, indicator column (-1: none), offset in counts, empty bin */
    float *edges;      /* n_numeric x n_edges, padded with +inf */
    int *categorical;  /* per categorical field: first column, width, offset in counts */
    double *score_edges;
    int score_offset;
    Py_buffer counts;  /* int64, writable, held */
} Watch;

typedef struct {
    const Network *network;
    PyObject *network_capsule, *plan, *checked;  /* owned: the network and the plan kept alive, the fallback */
    const FastEncodeApi *api;
    Watch *watch;      /* NULL: not monitored */
} Fused;

static void watch_free(Watch *watch) {
    if (watch == NULL) return;
    PyMem_Free(watch->numeric);
    PyMem_Free(watch->edges);
    PyMem_Free(watch->categorical);
    PyMem_Free(watch->score_edges);
    if (watch->counts.obj != NULL) PyBuffer_Release(&watch->counts);
    PyMem_Free(watch);
}

/* The bins of one encoded row and its probability, as Profile.count_rows and bin_scores give them. */
static void watch_count(Watch *watch, const float *row, float probability) {
    int64_t *counts = (int64_t *)watch->counts.buf;
    for (int i = 0; i < watch->n_numeric; i++) {
        const int *field = watch->numeric + 4 * i;
        int bin = 0;
        if (field[1] >= 0 && row[field[1]] == 1.0f) {
            bin = field[3];
        } else {
            const float *edges = watch->edges + (size_t)i * watch->n_edges;
            for (int e = 0; e < watch->n_edges; e++) bin += row[field[0]] >= edges[e];
        }
        counts[field[2] + bin]++;
    }
    for (int i = 0; i < watch->n_categorical; i++) {
        const int *field = watch->categorical + 3 * i;
        int bin = 0;
        for (int j = 0; j < field[1]; j++)
            if (row[field[0] + j] == 1.0f) { bin = j; break; }
        counts[field[2] + bin]++;
    }
    int low = 0, high = watch->n_score_edges;  /* the number of edges <= probability */
    while (low < high) {
        int middle = (low + high) / 2;
        if (watch->score_edges[middle] <= (double)probability) low = middle + 1; else high = middle;
    }
    counts[watch->score_offset + low]++;
}

static void *copy_array(PyObject *source, Py_ssize_t itemsize, const char *formats, Py_ssize_t *count) {
    Py_buffer view;
    void *out = NULL;
    if (PyObject_GetBuffer(source, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return NULL;
    if (view.itemsize != itemsize || strchr(formats, view.format[0]) == NULL) {
        PyErr_SetString(PyExc_ValueError, "a monitoring plan array has the wrong type");
    } else if ((out = PyMem_Malloc(view.len ? (size_t)view.len : 1)) == NULL) {
        PyErr_NoMemory();
    } else {
        memcpy(out, view.buf, (size_t)view.len);
        *count = view.len / itemsize;
    }
    PyBuffer_Release(&view);
    return out;
}

/* watch = (numeric int32 [n, 4], edges float32 [n, e], categorical int32 [m, 3], score edges float64,
 * score offset, counts int64 writable); every index is checked against the row and the counts here. */
static Watch *make_watch(PyObject *spec, int width) {
    PyObject *numeric, *edges, *categorical, *score_edges, *counts;
    int score_offset;
    Py_ssize_t n_numeric = 0, n_edges = 0, n_categorical = 0, n_score = 0, total;
    Watch *watch = PyMem_Calloc(1, sizeof(Watch));
    if (watch == NULL) return (Watch *)PyErr_NoMemory();
    if (!PyArg_ParseTuple(spec, "OOOOiO", &numeric, &edges, &categorical, &score_edges, &score_offset, &counts)
        || (watch->numeric = copy_array(numeric, 4, "il", &n_numeric)) == NULL
        || (watch->edges = copy_array(edges, 4, "f", &n_edges)) == NULL
        || (watch->categorical = copy_array(categorical, 4, "il", &n_categorical)) == NULL
        || (watch->score_edges = copy_array(score_edges, 8, "d", &n_score)) == NULL
        || PyObject_GetBuffer(counts, &watch->counts, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) < 0) {
        watch_free(watch);
        return NULL;
    }
    watch->n_numeric = (int)(n_numeric / 4);
    watch->n_edges = watch->n_numeric ? (int)(n_edges / watch->n_numeric) : 0;
    watch->n_categorical = (int)(n_categorical / 3);
    watch->n_score_edges = (int)n_score;
    watch->score_offset = score_offset;
    total = watch->counts.len / 8;
    int bad = watch->counts.itemsize != 8 || strchr("lq", watch->counts.format[0]) == NULL
              || n_numeric % 4 || n_categorical % 3 || (watch->n_numeric && n_edges % watch->n_numeric)
              || score_offset < 0 || score_offset + n_score >= total;
    for (int i = 0; !bad && i < watch->n_numeric; i++) {
        const int *f = watch->numeric + 4 * i;
        bad = f[0] < 0 || f[0] >= width || f[1] >= width || f[2] < 0 || f[3] < 0
              || f[2] + (f[3] > watch->n_edges ? f[3] : watch->n_edges) >= total;
    }
    for (int i = 0; !bad && i < watch->n_categorical; i++) {
        const int *f = watch->categorical + 3 * i;
        bad = f[0] < 0 || f[1] < 1 || f[0] + f[1] > width || f[2] < 0 || f[2] + f[1] > total;
    }
    if (bad) {
        watch_free(watch);
        PyErr_SetString(PyExc_ValueError, "the monitoring plan does not fit the row or the counts");
        return NULL;
    }
    return watch;
}

static const char *FUSED = "intent_edge.native.fused";

static void fused_free(PyObject *capsule) {
    Fused *fused = (Fused *)PyCapsule_GetPointer(capsule, FUSED);
    if (fused == NULL) return;
    Py_XDECREF(fused->network_capsule);
    Py_XDECREF(fused->plan);
    Py_XDECREF(fused->checked);
    watch_free(fused->watch);
    PyMem_Free(fused);
}

static PyObject *predict_record(PyObject *capsule, PyObject *record) {
    float row[FUSED_MAX_WIDTH], scratch[SMALL_SCRATCH];
    const Fused *fused = (const Fused *)PyCapsule_GetPointer(capsule, FUSED);
    if (fused == NULL) return NULL;
    int written = fused->api->encode_into(fused->plan, record, row, fused->network->width);
    if (written < 0) return NULL;
    if (written == 0) return PyObject_CallOneArg(fused->checked, record);
    float probability = run(fused->network, row, scratch);
    if (fused->watch != NULL) watch_count(fused->watch, row, probability);
    return PyFloat_FromDouble((double)probability);
}

static PyMethodDef PREDICT_RECORD = {
    "predict", predict_record, METH_O,
    "predict(record) -> the purchase probability for one raw record (a mapping of field name to value)"};

static PyObject *fuse(PyObject *self, PyObject *args) {
    PyObject *capsule, *plan, *checked, *watch_spec = Py_None, *capsule_out, *function;
    const FastEncodeApi *api;
    Network *network;
    Fused *fused;
    Watch *watch = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOO|O", &capsule, &plan, &checked, &watch_spec)
        || (network = network_of(capsule)) == NULL)
        return NULL;
    if (!PyCallable_Check(checked)) return PyErr_Format(PyExc_TypeError, "fuse: checked must be callable");
    if (network->width > FUSED_MAX_WIDTH || 2 * network->widest > SMALL_SCRATCH)
        return PyErr_Format(PyExc_ValueError, "a network over %d inputs or %d units wide is not fused",
                            FUSED_MAX_WIDTH, SMALL_SCRATCH / 2);
    api = (const FastEncodeApi *)PyCapsule_Import(FASTENCODE_API_CAPSULE, 0);
    if (api == NULL) return NULL;
    if (api->version != FASTENCODE_API_VERSION)
        return PyErr_Format(PyExc_ImportError, "the encoder fast path's C API is version %d, not %d", api->version,
                            FASTENCODE_API_VERSION);
    if (watch_spec != Py_None && (watch = make_watch(watch_spec, network->width)) == NULL) return NULL;
    fused = PyMem_Calloc(1, sizeof(Fused));
    if (fused == NULL) {
        watch_free(watch);
        return PyErr_NoMemory();
    }
    Py_INCREF(capsule);
    Py_INCREF(plan);
    Py_INCREF(checked);
    *fused = (Fused){network, capsule, plan, checked, api, watch};
    capsule_out = PyCapsule_New(fused, FUSED, fused_free);
    if (capsule_out == NULL) {
        Py_DECREF(capsule);
        Py_DECREF(plan);
        Py_DECREF(checked);
        watch_free(watch);
        PyMem_Free(fused);
        return NULL;
    }
    function = PyCFunction_New(&PREDICT_RECORD, capsule_out);
    Py_DECREF(capsule_out);
    return function;
}

static PyMethodDef METHODS[] = {
    {"fuse", fuse, METH_VARARGS,
     "fuse(network, plan, checked[, watch]) -> predict: record in, probability out (checked(record) where the "
     "fast path does not take it), counted into watch's monitoring counts where given"},
    {"make_network", make_network, METH_VARARGS, "make_network(inputs, layers) -> network capsule"},
    {"make_int8_network", make_int8_network, METH_VARARGS,
     "make_int8_network(inputs, (input_scale, input_zero_point, output_scale, output_zero_point), logistic, "
     "layers) -> network capsule"},
    {"infer_one", infer_one, METH_VARARGS, "infer_one(network, row) -> probability"},
    {"infer", infer, METH_VARARGS, "infer(network, matrix, out): a probability per row into out"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "_native", NULL, -1, METHODS, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__native(void) {
    return PyModule_Create(&MODULE);
}
