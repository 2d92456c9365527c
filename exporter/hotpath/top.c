/*
 * exporter._hotpath.TopCounts: TopPieces.counts (the heavy hitters among downloaded pieces)
 * owned by C, so that the scan counts a GET without a Python str, a dict lookup and, when
 * the table is full, a call of TopPieces.add (issue 15: ~240 M of 3,563 M instructions on
 * the 1M-line bench log).
 *
 * It is a mapping piece -> count with the behaviour of the dict it replaces (insertion
 * order, len/in/[]/del/get/keys/values/items/update/clear, iteration over keys), and
 * `add(piece)` is TopPieces.add: +1 if tracked, else a new entry of 1 while there are fewer
 * than `capacity`, else every count -1 and the zeros dropped (Misra-Gries; the piece itself
 * is not added). add() never grows the table past `capacity`; only a Python write
 * (a checkpoint's counts) can, as it could the dict.
 *
 * Keys as in pending.c: the UTF-8 of the str (surrogates passed through, so any str comes
 * back equal), hashed with hash.c's hash_key (keyed from CPython's hash secret); a
 * piece ID fits in its entry.
 * Layout: the entries in insertion order without holes (the decrement and a delete squeeze
 * them and rebuild the index), and an open-addressing index with 2 slots per entry.
 */
#include "hotpath.h"

#define INLINE_KEY 56 /* a piece ID (52 bytes) is kept in its entry: no malloc per new piece */
typedef struct {
    Py_ssize_t len;
    Py_hash_t hash;
    long long count;
    char *heap; /* a longer key (PyMem_Malloc'd), else NULL and the key is in small */
    char small[INLINE_KEY];
} Count;

static inline const char *
key_at(const Count *e)
{
    return e->heap != NULL ? e->heap : e->small;
}

typedef struct {
    PyObject_HEAD
    Count *entries;
    Py_ssize_t used, alloc; /* live entries (no holes), allocated */
    Py_ssize_t *index;      /* entry number or EMPTY; 2 * alloc slots */
    Py_ssize_t mask;
    Py_ssize_t capacity; /* TopPieces.capacity */
} TopCounts;

#define EMPTY (-1)

/* ---- the table ------------------------------------------------------------------------ */

/* The entry of the key, or -1 (then *slot is the free index slot it would go in). */
static Py_ssize_t
find(const TopCounts *t, const char *key, Py_ssize_t len, Py_hash_t hash, size_t *slot)
{
    if (t->index == NULL)
        return -1;
    for (size_t i = (size_t)hash & (size_t)t->mask, perturb = (size_t)hash;;
         perturb >>= 5, i = (i * 5 + perturb + 1) & (size_t)t->mask) {
        Py_ssize_t ix = t->index[i];
        if (ix == EMPTY) {
            *slot = i;
            return -1;
        }
        const Count *e = &t->entries[ix];
        if (e->hash == hash && e->len == len && memcmp(key_at(e), key, (size_t)len) == 0)
            return ix;
    }
}

static void
reindex(TopCounts *t)
{
    for (Py_ssize_t i = 0; i <= t->mask; i++)
        t->index[i] = EMPTY;
    for (Py_ssize_t n = 0; n < t->used; n++) {
        size_t i, perturb = (size_t)t->entries[n].hash;
        for (i = perturb & (size_t)t->mask; t->index[i] != EMPTY;
             perturb >>= 5, i = (i * 5 + perturb + 1) & (size_t)t->mask)
            ;
        t->index[i] = n;
    }
}

static int
grow(TopCounts *t)
{
    if (t->alloc > PY_SSIZE_T_MAX / 4 / (Py_ssize_t)sizeof(Count)) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t alloc = t->alloc ? t->alloc * 2 : 8;
    Count *e = PyMem_Realloc(t->entries, (size_t)alloc * sizeof(Count));
    Py_ssize_t *ix = e ? PyMem_Malloc((size_t)alloc * 2 * sizeof(Py_ssize_t)) : NULL;
    if (e != NULL)
        t->entries = e;
    if (ix == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    PyMem_Free(t->index);
    t->index = ix;
    t->alloc = alloc;
    t->mask = alloc * 2 - 1;
    reindex(t);
    return 0;
}

/* A new entry (the key is not there; slot as find gave it): 0, or -1 on error. */
static int
insert(TopCounts *t, const char *key, Py_ssize_t len, Py_hash_t hash, long long count,
       size_t slot)
{
    if (t->used == t->alloc) {
        if (grow(t) < 0)
            return -1;
        find(t, key, len, hash, &slot);
    }
    Count *e = &t->entries[t->used];
    e->heap = NULL;
    if (len > INLINE_KEY && (e->heap = PyMem_Malloc((size_t)len)) == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(e->heap != NULL ? e->heap : e->small, key, (size_t)len);
    e->len = len;
    e->hash = hash;
    e->count = count;
    t->index[slot] = t->used++;
    return 0;
}

/* TopPieces.add's full branch: {p: c - 1 for p, c in counts.items() if c > 1} */
static void
decrement(TopCounts *t)
{
    Py_ssize_t kept = 0;
    for (Py_ssize_t n = 0; n < t->used; n++) {
        Count *e = &t->entries[n];
        if (e->count > 1) {
            e->count--;
            t->entries[kept++] = *e;
        }
        else
            PyMem_Free(e->heap);
    }
    t->used = kept;
    if (t->index != NULL)
        reindex(t);
}

static void
remove_at(TopCounts *t, Py_ssize_t n)
{
    PyMem_Free(t->entries[n].heap);
    memmove(&t->entries[n], &t->entries[n + 1], (size_t)(t->used - n - 1) * sizeof(Count));
    t->used--;
    reindex(t);
}

static void
clear(TopCounts *t)
{
    for (Py_ssize_t n = 0; n < t->used; n++)
        PyMem_Free(t->entries[n].heap);
    PyMem_Free(t->entries);
    PyMem_Free(t->index);
    t->entries = NULL;
    t->index = NULL;
    t->used = t->alloc = t->mask = 0;
}

static int
add(TopCounts *t, const char *key, Py_ssize_t len)
{
    Py_hash_t hash = hash_key(key, len);
    size_t slot = 0;
    Py_ssize_t at = find(t, key, len, hash, &slot);
    if (at >= 0) {
        if (t->entries[at].count == LLONG_MAX) {
            PyErr_SetString(PyExc_OverflowError, "a top piece count overflows");
            return -1;
        }
        t->entries[at].count++;
        return 0;
    }
    if (t->used < t->capacity)
        return insert(t, key, len, hash, 1, slot);
    decrement(t);
    return 0;
}

/* ---- the C side (apply.c) ------------------------------------------------------------- */

int
top_check(PyObject *obj)
{
    return Py_IS_TYPE(obj, &TopCounts_Type);
}

int
top_add(PyObject *obj, const char *piece, Py_ssize_t len)
{
    return add((TopCounts *)obj, piece, len);
}

/* ---- the Python side -------------------------------------------------------------------- */

/* A Python key's bytes: 1 (*key, *len; *owner holds them, or NULL), 0 if it is no str (no
 * such entry: lookups miss, stores raise), -1 on error. */
static int
key_of(PyObject *key, const char **s, Py_ssize_t *len, PyObject **owner)
{
    *owner = NULL;
    if (!PyUnicode_Check(key))
        return 0;
    if (PyUnicode_IS_ASCII(key)) {
        *s = (const char *)PyUnicode_DATA(key);
        *len = PyUnicode_GET_LENGTH(key);
        return 1;
    }
    *owner = PyUnicode_AsEncodedString(key, "utf-8", "surrogatepass");
    if (*owner == NULL)
        return -1;
    *s = PyBytes_AS_STRING(*owner);
    *len = PyBytes_GET_SIZE(*owner);
    return 1;
}

/* The entry of a Python key: its number, -1 if none, -2 on error. */
static Py_ssize_t
lookup(TopCounts *t, PyObject *key)
{
    const char *s;
    Py_ssize_t len;
    size_t slot;
    PyObject *owner;
    int ok = key_of(key, &s, &len, &owner);
    if (ok <= 0)
        return ok < 0 ? -2 : -1;
    Py_ssize_t at = find(t, s, len, hash_key(s, len), &slot);
    Py_XDECREF(owner);
    return at;
}

static PyObject *
key_object(const Count *e)
{
    return PyUnicode_DecodeUTF8(key_at(e), e->len, "surrogatepass");
}

static int
not_a_key(PyObject *key)
{
    PyErr_Format(PyExc_TypeError, "a top piece is a str, not %.100s", Py_TYPE(key)->tp_name);
    return -1;
}

static PyObject *
t_add(PyObject *self, PyObject *piece)
{
    const char *s;
    Py_ssize_t len;
    PyObject *owner;
    int ok = key_of(piece, &s, &len, &owner);
    if (ok == 0)
        not_a_key(piece);
    int rc = ok <= 0 ? -1 : add((TopCounts *)self, s, len);
    Py_XDECREF(owner);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

static Py_ssize_t
t_len(PyObject *self)
{
    return ((TopCounts *)self)->used;
}

static int
t_contains(PyObject *self, PyObject *key)
{
    Py_ssize_t at = lookup((TopCounts *)self, key);
    return at == -2 ? -1 : at >= 0;
}

static PyObject *
t_getitem(PyObject *self, PyObject *key)
{
    TopCounts *t = (TopCounts *)self;
    Py_ssize_t at = lookup(t, key);
    if (at == -2)
        return NULL;
    if (at < 0) {
        PyErr_SetObject(PyExc_KeyError, key);
        return NULL;
    }
    return PyLong_FromLongLong(t->entries[at].count);
}

static int
t_setitem(PyObject *self, PyObject *key, PyObject *value)
{
    TopCounts *t = (TopCounts *)self;
    if (value == NULL) {
        Py_ssize_t at = lookup(t, key);
        if (at == -1)
            PyErr_SetObject(PyExc_KeyError, key);
        if (at < 0)
            return -1;
        remove_at(t, at);
        return 0;
    }
    if (!PyLong_Check(value)) {
        PyErr_Format(PyExc_TypeError, "a top piece count is an int, not %.100s",
                     Py_TYPE(value)->tp_name);
        return -1;
    }
    long long count = PyLong_AsLongLong(value);
    if (count == -1 && PyErr_Occurred())
        return -1;
    const char *s;
    Py_ssize_t len;
    PyObject *owner;
    int ok = key_of(key, &s, &len, &owner);
    if (ok == 0)
        return not_a_key(key);
    int rc = -1;
    if (ok > 0) {
        Py_hash_t hash = hash_key(s, len);
        size_t slot = 0;
        Py_ssize_t at = find(t, s, len, hash, &slot);
        if (at >= 0) {
            t->entries[at].count = count;
            rc = 0;
        }
        else
            rc = insert(t, s, len, hash, count, slot);
    }
    Py_XDECREF(owner);
    return rc;
}

/* keys, values or items (0, 1, 2) as a list, in insertion order; only the counts of at
 * least `least` */
static PyObject *
listing(TopCounts *t, int what, long long least)
{
    PyObject *out = PyList_New(0);
    for (Py_ssize_t n = 0; out != NULL && n < t->used; n++) {
        const Count *e = &t->entries[n];
        if (e->count < least)
            continue;
        PyObject *k = what != 1 ? key_object(e) : NULL;
        PyObject *v = what != 0 ? PyLong_FromLongLong(e->count) : NULL;
        PyObject *item = what == 0 ? k : what == 1 ? v : (k && v ? PyTuple_Pack(2, k, v) : NULL);
        if (what == 2) {
            Py_XDECREF(k);
            Py_XDECREF(v);
        }
        if (item == NULL || PyList_Append(out, item) < 0)
            Py_CLEAR(out);
        Py_XDECREF(item);
    }
    return out;
}

static PyObject *t_keys(PyObject *self, PyObject *unused)
{
    return listing((TopCounts *)self, 0, LLONG_MIN);
}
static PyObject *t_values(PyObject *self, PyObject *unused)
{
    return listing((TopCounts *)self, 1, LLONG_MIN);
}
static PyObject *t_items(PyObject *self, PyObject *unused)
{
    return listing((TopCounts *)self, 2, LLONG_MIN);
}
static PyObject *t_frequent(PyObject *self, PyObject *unused)
{
    return listing((TopCounts *)self, 2, 2);
}

static PyObject *
t_iter(PyObject *self)
{
    PyObject *keys = t_keys(self, NULL);
    PyObject *it = keys ? PyObject_GetIter(keys) : NULL;
    Py_XDECREF(keys);
    return it;
}

static PyObject *
t_get(PyObject *self, PyObject *args)
{
    TopCounts *t = (TopCounts *)self;
    PyObject *key, *dflt = Py_None;
    if (!PyArg_UnpackTuple(args, "get", 1, 2, &key, &dflt))
        return NULL;
    Py_ssize_t at = lookup(t, key);
    if (at == -2)
        return NULL;
    if (at < 0)
        return Py_NewRef(dflt);
    return PyLong_FromLongLong(t->entries[at].count);
}

/* update(mapping or pairs), as dict.update: through a dict of them, in its order */
static PyObject *
t_update(PyObject *self, PyObject *other)
{
    PyObject *d = PyObject_CallOneArg((PyObject *)&PyDict_Type, other);
    if (d == NULL)
        return NULL;
    PyObject *k, *v;
    Py_ssize_t pos = 0;
    while (PyDict_Next(d, &pos, &k, &v))
        if (t_setitem(self, k, v) < 0) {
            Py_DECREF(d);
            return NULL;
        }
    Py_DECREF(d);
    Py_RETURN_NONE;
}

static PyObject *
t_clear(PyObject *self, PyObject *unused)
{
    clear((TopCounts *)self);
    Py_RETURN_NONE;
}

static PyObject *
t_repr(PyObject *self)
{
    PyObject *items = t_items(self, NULL);
    PyObject *d = items ? PyObject_CallOneArg((PyObject *)&PyDict_Type, items) : NULL;
    PyObject *r = d ? PyUnicode_FromFormat("TopCounts(%R, capacity=%zd)", d,
                                           ((TopCounts *)self)->capacity)
                    : NULL;
    Py_XDECREF(items);
    Py_XDECREF(d);
    return r;
}

static PyObject *
t_get_capacity(PyObject *self, void *unused)
{
    return PyLong_FromSsize_t(((TopCounts *)self)->capacity);
}

static int
t_set_capacity(PyObject *self, PyObject *value, void *unused)
{
    if (value == NULL || !PyLong_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "the capacity is an int");
        return -1;
    }
    Py_ssize_t capacity = PyLong_AsSsize_t(value);
    if (capacity == -1 && PyErr_Occurred())
        return -1;
    ((TopCounts *)self)->capacity = capacity;
    return 0;
}

static PyObject *
t_sizeof(PyObject *self, PyObject *unused)
{
    TopCounts *t = (TopCounts *)self;
    size_t n = sizeof(TopCounts) + (size_t)t->alloc * (sizeof(Count) + 2 * sizeof(Py_ssize_t));
    for (Py_ssize_t i = 0; i < t->used; i++)
        n += t->entries[i].heap != NULL ? (size_t)t->entries[i].len : 0;
    return PyLong_FromSize_t(n);
}

static int
t_init(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"capacity", NULL};
    Py_ssize_t capacity = 1000;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|n:TopCounts", names, &capacity))
        return -1;
    clear((TopCounts *)self);
    ((TopCounts *)self)->capacity = capacity;
    return 0;
}

static void
t_dealloc(PyObject *self)
{
    clear((TopCounts *)self);
    Py_TYPE(self)->tp_free(self);
}

static PyMappingMethods t_mapping = {t_len, t_getitem, t_setitem};
static PySequenceMethods t_sequence = {.sq_contains = t_contains};
static PyGetSetDef t_getset[] = {
    {"capacity", t_get_capacity, t_set_capacity, "TopPieces.capacity", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};
static PyMethodDef t_methods[] = {
    {"add", t_add, METH_O, "add(piece): TopPieces.add (Misra-Gries)"},
    {"frequent", t_frequent, METH_NOARGS, "[(piece, count), ...] of the counts >= 2"},
    {"keys", t_keys, METH_NOARGS, NULL},
    {"values", t_values, METH_NOARGS, NULL},
    {"items", t_items, METH_NOARGS, "[(piece, count), ...] in insertion order"},
    {"get", t_get, METH_VARARGS, NULL},
    {"update", t_update, METH_O, NULL},
    {"clear", t_clear, METH_NOARGS, NULL},
    {"__sizeof__", t_sizeof, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

PyTypeObject TopCounts_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "exporter._hotpath.TopCounts",
    .tp_basicsize = sizeof(TopCounts),
    .tp_dealloc = t_dealloc,
    .tp_repr = t_repr,
    .tp_as_mapping = &t_mapping,
    .tp_as_sequence = &t_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "TopPieces.counts in C: piece -> count, insertion order, add() (Misra-Gries)",
    .tp_iter = t_iter,
    .tp_methods = t_methods,
    .tp_getset = t_getset,
    .tp_init = t_init,
    .tp_new = PyType_GenericNew,
};
