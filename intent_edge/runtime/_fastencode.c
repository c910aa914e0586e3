/* The encoder's compiled fast path for one record (see intent_edge/runtime/encoder.py).
 *
 * It handles only the common case: a plain dict whose numeric fields are finite Python floats or ints
 * and whose categorical fields are str, int or bool values found in the vocabulary as they are (a bool
 * as "true"/"false"). Anything
 * else (a missing field, None, NaN, a bool, a numpy scalar, an unseen category, an out-of-range
 * value, a row that is not a contiguous float32 buffer of the right width) makes encode() return
 * False and write nothing, and the checked Python path then encodes the record or raises the error
 * that names the field. The arithmetic is the Python path's, operation for operation (libm log1p,
 * float64, then one rounding to float32), so both give identical rows; a property test holds them to it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>

#include "fastencode_api.h"

#define MAX_FIELDS 512

typedef struct {
    PyObject *name;       /* str, owned */
    int logged;           /* log1p(max(x, 0)) before standardising */
    double center, scale;
    Py_ssize_t column;
} NumericField;

#define SMALL_INTS 256  /* integer categories 0..255 are looked up in a table, not a dict */

typedef struct {
    PyObject *name;       /* str, owned */
    PyObject *by_text;    /* dict str -> absolute column, owned */
    PyObject *by_int;     /* dict int -> absolute column, owned */
    Py_ssize_t small[SMALL_INTS];  /* by_int for 0..255: the column, or -1 where not in the vocabulary */
} CategoricalField;

/* The key layout of the last record taken: callers such as pandas' to_dict("records") or a dict literal
 * reuse the same key objects in the same order for every record, so a record whose keys are, one by one,
 * those objects is read by walking it (pointer compares) instead of 17 hashed lookups with string
 * compares. The keys are held, so an address cannot be reused by another string while cached. */
#define LAYOUT_KEYS 128

typedef struct {
    Py_ssize_t size;               /* entries of the cached layout; 0 when none is cached */
    PyObject *keys[LAYOUT_KEYS];   /* the record's keys in iteration order, owned */
    int field[LAYOUT_KEYS];        /* the field each key names (numeric i, categorical n_numeric + i), or -1 */
} Layout;

typedef struct {
    Py_ssize_t width, n_numeric, n_categorical;
    double limit;
    NumericField *numeric;
    CategoricalField *categorical;
    PyObject *field_index;         /* dict name -> field number as in Layout.field, owned */
    Layout layout;                 /* mutated only with the GIL held and no Python code running */
} Plan;

static const char *CAPSULE = "intent_edge.fastencode.plan";
static PyObject *TRUE_TEXT, *FALSE_TEXT;  /* how a bool category is looked up, as canonical_category says */

static void plan_free(Plan *plan) {
    if (plan == NULL) return;
    for (Py_ssize_t i = 0; i < plan->n_numeric; i++) Py_XDECREF(plan->numeric[i].name);
    for (Py_ssize_t i = 0; i < plan->n_categorical; i++) {
        Py_XDECREF(plan->categorical[i].name);
        Py_XDECREF(plan->categorical[i].by_text);
        Py_XDECREF(plan->categorical[i].by_int);
    }
    for (Py_ssize_t k = 0; k < plan->layout.size; k++) Py_DECREF(plan->layout.keys[k]);
    Py_XDECREF(plan->field_index);
    PyMem_Free(plan->numeric);
    PyMem_Free(plan->categorical);
    PyMem_Free(plan);
}

static void capsule_free(PyObject *capsule) {
    plan_free((Plan *)PyCapsule_GetPointer(capsule, CAPSULE));
}

/* make_plan(width, limit, numeric, categorical): numeric is a tuple of (name, logged, center, scale,
 * column); categorical a tuple of (name, by_text, by_int) with dict values being absolute columns. */
static PyObject *make_plan(PyObject *self, PyObject *args) {
    Py_ssize_t width;
    double limit;
    PyObject *numeric, *categorical;
    if (!PyArg_ParseTuple(args, "ndO!O!", &width, &limit, &PyTuple_Type, &numeric, &PyTuple_Type, &categorical))
        return NULL;
    Py_ssize_t n_numeric = PyTuple_GET_SIZE(numeric), n_categorical = PyTuple_GET_SIZE(categorical);
    if (n_numeric > MAX_FIELDS || n_categorical > MAX_FIELDS) {
        PyErr_SetString(PyExc_ValueError, "too many fields for the fast path");
        return NULL;
    }
    Plan *plan = PyMem_Calloc(1, sizeof(Plan));
    if (plan == NULL) return PyErr_NoMemory();
    plan->width = width;
    plan->limit = limit;
    plan->numeric = PyMem_Calloc(n_numeric ? n_numeric : 1, sizeof(NumericField));
    plan->categorical = PyMem_Calloc(n_categorical ? n_categorical : 1, sizeof(CategoricalField));
    if (plan->numeric == NULL || plan->categorical == NULL) {
        plan_free(plan);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n_numeric; i++) {
        NumericField *field = &plan->numeric[i];
        PyObject *name;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(numeric, i), "O!pddn", &PyUnicode_Type, &name, &field->logged,
                              &field->center, &field->scale, &field->column)) {
            plan_free(plan);
            return NULL;
        }
        if (field->column < 0 || field->column >= width) {
            plan_free(plan);
            PyErr_SetString(PyExc_ValueError, "numeric column outside the row");
            return NULL;
        }
        Py_INCREF(name);
        field->name = name;
        plan->n_numeric = i + 1;
    }
    for (Py_ssize_t i = 0; i < n_categorical; i++) {
        CategoricalField *field = &plan->categorical[i];
        PyObject *name, *by_text, *by_int;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(categorical, i), "O!O!O!", &PyUnicode_Type, &name, &PyDict_Type,
                              &by_text, &PyDict_Type, &by_int)) {
            plan_free(plan);
            return NULL;
        }
        /* Columns are checked here once, so encode() can trust them. */
        PyObject *tables[2] = {by_text, by_int};
        for (int t = 0; t < 2; t++) {
            Py_ssize_t position = 0;
            PyObject *key, *value;
            while (PyDict_Next(tables[t], &position, &key, &value)) {
                Py_ssize_t column = PyLong_Check(value) ? PyLong_AsSsize_t(value) : -1;
                if (column < 0 || column >= width) {
                    plan_free(plan);
                    if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "category column outside the row");
                    return NULL;
                }
            }
        }
        for (Py_ssize_t v = 0; v < SMALL_INTS; v++) field->small[v] = -1;
        Py_ssize_t position = 0;
        PyObject *key, *value;
        while (PyDict_Next(by_int, &position, &key, &value)) {
            long small = PyLong_Check(key) ? PyLong_AsLong(key) : -1;
            if (small == -1 && PyErr_Occurred()) PyErr_Clear();
            else if (small >= 0 && small < SMALL_INTS) field->small[small] = PyLong_AsSsize_t(value);
        }
        Py_INCREF(name);
        Py_INCREF(by_text);
        Py_INCREF(by_int);
        field->name = name;
        field->by_text = by_text;
        field->by_int = by_int;
        plan->n_categorical = i + 1;
    }
    plan->field_index = PyDict_New();
    if (plan->field_index == NULL) {
        plan_free(plan);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n_numeric + n_categorical; i++) {
        PyObject *name = i < n_numeric ? plan->numeric[i].name : plan->categorical[i - n_numeric].name;
        PyObject *number = PyLong_FromSsize_t(i);
        int failed = number == NULL || PyDict_SetItem(plan->field_index, name, number) < 0;
        Py_XDECREF(number);
        if (failed) {
            plan_free(plan);
            return NULL;
        }
    }
    PyObject *capsule = PyCapsule_New(plan, CAPSULE, capsule_free);
    if (capsule == NULL) plan_free(plan);
    return capsule;
}

/* The record's value for every field into values (borrowed), by hashed lookup of each field's name.
 * 1: all present; 0: one is missing (the checked path names it); -1: an exception is set. */
static int values_by_name(const Plan *plan, PyObject *record, PyObject **values) {
    for (Py_ssize_t i = 0; i < plan->n_numeric + plan->n_categorical; i++) {
        PyObject *name = i < plan->n_numeric ? plan->numeric[i].name : plan->categorical[i - plan->n_numeric].name;
        values[i] = PyDict_GetItemWithError(record, name);
        if (values[i] == NULL) return PyErr_Occurred() ? -1 : 0;
    }
    return 1;
}

/* The same, by walking the record: through the cached layout when its keys are the record's, else by
 * looking each key up among the field names and caching this layout when it names every field. Only
 * exact dicts whose keys are exact str take this way: their hashing and comparison run no Python code,
 * so nothing can enter the plan while its layout is being replaced. */
static int values_by_layout(Plan *plan, PyObject *record, PyObject **values) {
    Layout *layout = &plan->layout;
    Py_ssize_t size = PyDict_GET_SIZE(record), n_fields = plan->n_numeric + plan->n_categorical;
    Py_ssize_t position = 0, k = 0;
    PyObject *key, *value;
    if (size == layout->size && size > 0) {
        while (PyDict_Next(record, &position, &key, &value) && key == layout->keys[k]) {
            if (layout->field[k] >= 0) values[layout->field[k]] = value;
            k++;
        }
        if (k == size) return 1;
    }
    /* A wide record is cheaper to read by name than to walk whenever its keys are new objects. */
    if (size > LAYOUT_KEYS || size > 2 * n_fields + 8) return values_by_name(plan, record, values);
    PyObject *keys[LAYOUT_KEYS];
    int field[LAYOUT_KEYS];
    Py_ssize_t found = 0;
    position = 0;
    k = 0;
    while (PyDict_Next(record, &position, &key, &value)) {
        if (!PyUnicode_CheckExact(key)) return values_by_name(plan, record, values);
        PyObject *number = PyDict_GetItemWithError(plan->field_index, key);
        if (number == NULL && PyErr_Occurred()) return -1;
        keys[k] = key;
        field[k] = number == NULL ? -1 : (int)PyLong_AsLong(number);
        if (field[k] >= 0) {
            values[field[k]] = value;
            found++;
        }
        k++;
    }
    if (found < n_fields) return 0;
    for (Py_ssize_t i = 0; i < size; i++) Py_INCREF(keys[i]);
    for (Py_ssize_t i = 0; i < layout->size; i++) Py_DECREF(layout->keys[i]);
    memcpy(layout->keys, keys, (size_t)size * sizeof(PyObject *));
    memcpy(layout->field, field, (size_t)size * sizeof(int));
    layout->size = size;
    return 1;
}

/* The fast path proper, as fastencode_api.h describes it (a row of another width is not taken). */
static int encode_into(PyObject *plan_capsule, PyObject *record, float *row, Py_ssize_t width) {
    Plan *plan = (Plan *)PyCapsule_GetPointer(plan_capsule, CAPSULE);
    if (plan == NULL) return -1;
    if (!PyDict_Check(record) || width != plan->width) return 0;

    PyObject *values[2 * MAX_FIELDS];
#ifdef Py_GIL_DISABLED
    int gathered = values_by_name(plan, record, values);  /* the layout cache relies on the GIL */
#else
    int gathered = PyDict_CheckExact(record) ? values_by_layout(plan, record, values)
                                             : values_by_name(plan, record, values);
#endif
    if (gathered <= 0) return gathered;
    double scores[MAX_FIELDS];
    Py_ssize_t hot[MAX_FIELDS];
    for (Py_ssize_t i = 0; i < plan->n_numeric; i++) {
        const NumericField *field = &plan->numeric[i];
        PyObject *value = values[i];
        double x;
        if (PyFloat_CheckExact(value)) {
            x = PyFloat_AS_DOUBLE(value);
        } else if (PyLong_CheckExact(value)) {
            x = PyLong_AsDouble(value);
            if (x == -1.0 && PyErr_Occurred()) {  /* too large for a float64: the checked path says so */
                PyErr_Clear();
                return 0;
            }
        } else {
            return 0;
        }
        if (!isfinite(x)) return 0;
        double t = field->logged ? (x > 0.0 ? log1p(x) : 0.0) : x;
        double score = (t - field->center) / field->scale;
        if (!(score >= -plan->limit && score <= plan->limit)) return 0;
        scores[i] = score;
    }
    for (Py_ssize_t i = 0; i < plan->n_categorical; i++) {
        const CategoricalField *field = &plan->categorical[i];
        PyObject *value = values[plan->n_numeric + i], *column;
        if (PyUnicode_CheckExact(value)) {
            column = PyDict_GetItemWithError(field->by_text, value);
        } else if (PyLong_CheckExact(value)) {
            int overflow;
            long small = PyLong_AsLongAndOverflow(value, &overflow);
            if (!overflow && small >= 0 && small < SMALL_INTS) {
                if (field->small[small] < 0) return 0;  /* not in the vocabulary: the checked path says so */
                hot[i] = field->small[small];
                continue;
            }
            column = PyDict_GetItemWithError(field->by_int, value);
        } else if (PyBool_Check(value)) {
            column = PyDict_GetItemWithError(field->by_text, value == Py_True ? TRUE_TEXT : FALSE_TEXT);
        } else {
            return 0;
        }
        if (column == NULL) return PyErr_Occurred() ? -1 : 0;
        hot[i] = PyLong_AsSsize_t(column);
    }
    memset(row, 0, (size_t)width * sizeof(float));
    for (Py_ssize_t i = 0; i < plan->n_numeric; i++) row[plan->numeric[i].column] = (float)scores[i];
    for (Py_ssize_t i = 0; i < plan->n_categorical; i++) row[hot[i]] = 1.0f;
    return 1;
}

/* encode(plan, record, out) -> bool: True when the row was written, False when the checked path must
 * take this record. Raises only for a broken plan or an exception from the record's own keys. */
static PyObject *encode(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "encode(plan, record, out) takes 3 arguments");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[2], &view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyErr_Clear();
        Py_RETURN_FALSE;
    }
    int written = 0;
    if (view.itemsize == 4 && view.format != NULL && strcmp(view.format, "f") == 0)
        written = encode_into(args[0], args[1], (float *)view.buf, view.len / 4);
    PyBuffer_Release(&view);
    if (written < 0) return NULL;
    return PyBool_FromLong(written);
}

static PyMethodDef methods[] = {
    {"make_plan", make_plan, METH_VARARGS, "make_plan(width, limit, numeric, categorical) -> plan"},
    {"encode", (PyCFunction)(void (*)(void))encode, METH_FASTCALL,
     "encode(plan, record, out) -> bool: write the encoded record into out (float32, width) if it takes the "
     "fast path; False means nothing was written and the checked path must encode it."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fastencode",
                                    "The encoder's compiled single-record fast path.", -1, methods};

/* Published for the native backend: see fastencode_api.h. */
static const FastEncodeApi API = {FASTENCODE_API_VERSION, encode_into};

PyMODINIT_FUNC PyInit__fastencode(void) {
    TRUE_TEXT = PyUnicode_InternFromString("true");
    FALSE_TEXT = PyUnicode_InternFromString("false");
    if (TRUE_TEXT == NULL || FALSE_TEXT == NULL) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    PyObject *api = PyCapsule_New((void *)&API, FASTENCODE_API_CAPSULE, NULL);
    if (api == NULL || PyModule_AddObject(m, "_C_API", api) < 0) {
        Py_XDECREF(api);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
