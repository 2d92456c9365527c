/*
 * exporter._hotpath.Pending: NodeState.pending (the pairing table of `... started` lines)
 * owned by C, so that the scan loop pairs a start with its finish without a Python object.
 *
 * It is a mapping (piece_id, action, remote_address) -> start time with the behaviour of
 * the dict it replaces: insertion order (a start written again keeps its place; NodeState
 * evicts the oldest first), len/in/[]/del/pop/get/keys/items/values, iteration over keys.
 * The keys are kept as bytes (the strings in UTF-8, surrogates passed through, so that any
 * str comes back equal) and hashed with hash_key (hash.c), keyed from CPython's hash secret:
 * a hostile log cannot pick colliding piece IDs. `expire(horizon)` is NodeState._sweep's loop in C.
 *
 * Layout as in CPython's dict: entries appended in insertion order (holes where deleted,
 * squeezed out when the array fills), and an open-addressing index into them.
 * A key of up to BLOCK bytes (a piece ID and an IPv4 address: 1 + 4 + 52 + <= 21) lives in a
 * block of the table's own free list, so that a start/finish pair calls no allocator (it
 * was PyMem_Malloc + PyMem_Free, ~60 of ~740 instructions a pair); longer keys are
 * PyMem_Malloc'd. The blocks come in chunks that grow with the table (1/8 of the blocks
 * so far, at least one) and are kept until clear(), as the entries array is.
 */
#include "hotpath.h"

#include "pending.h"

#define EMPTY (-1)
#define DUMMY (-2)
#define KEY_STACK 320 /* piece and remote of a common line (<= MAX_FIELD each) fit */

/* ---- the table ------------------------------------------------------------------------ */

/* The length of the key of (action, piece, remote), -1 on error. */
static Py_ssize_t
key_len(Py_ssize_t plen, Py_ssize_t rlen)
{
    if (plen > UINT32_MAX || rlen > PY_SSIZE_T_MAX / 2 - plen) {
        PyErr_SetString(PyExc_OverflowError, "pairing key too long");
        return -1;
    }
    return 5 + plen + rlen;
}

static void
key_write(char *k, int action, const char *piece, Py_ssize_t plen, const char *remote,
          Py_ssize_t rlen)
{
    uint32_t n = (uint32_t)plen;
    k[0] = (char)action;
    memcpy(k + 1, &n, 4);
    memcpy(k + 5, piece, (size_t)plen);
    memcpy(k + 5 + plen, remote, (size_t)rlen);
}

/* The key bytes of (action, piece, remote) into buf (KEY_STACK bytes) or a malloc'd buffer
 * (*heap). Returns the length, -1 on error. */
static Py_ssize_t
key_bytes(char *buf, char **heap, int action, const char *piece, Py_ssize_t plen,
          const char *remote, Py_ssize_t rlen)
{
    *heap = NULL;
    Py_ssize_t len = key_len(plen, rlen);
    char *k = buf;
    if (len > KEY_STACK && (k = *heap = PyMem_Malloc((size_t)len)) == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    if (len >= 0)
        key_write(k, action, piece, plen, remote, rlen);
    return len;
}

/* The index slot that holds this key, or -1 (then *free_slot is where it would go).
 * Inlined: a call of it cost ~35 instructions of saving and restoring registers. */
static inline __attribute__((always_inline)) Py_ssize_t
find(Pending *t, const char *key, Py_ssize_t len, Py_hash_t hash, Py_ssize_t *free_slot)
{
    Py_ssize_t dummy = -1;
    if (t->index == NULL) {
        *free_slot = -1;
        return -1;
    }
    for (size_t i = (size_t)hash & (size_t)t->mask, perturb = (size_t)hash;;
         perturb >>= 5, i = (i * 5 + perturb + 1) & (size_t)t->mask) {
        Py_ssize_t ix = t->index[i];
        if (ix == EMPTY) {
            *free_slot = dummy >= 0 ? dummy : (Py_ssize_t)i;
            return -1;
        }
        if (ix == DUMMY) {
            if (dummy < 0)
                dummy = (Py_ssize_t)i;
            continue;
        }
        Entry *e = &t->entries[ix];
        if (e->hash == hash && e->len == len && memcmp(e->key, key, (size_t)len) == 0)
            return (Py_ssize_t)i;
    }
}

/* Squeeze out the holes (or grow), and rebuild the index: 2 slots per entry. */
static int
resize(Pending *t)
{
    Py_ssize_t live = 0;
    for (Py_ssize_t i = t->first; i < t->n_entries; i++)
        if (t->entries[i].key != NULL)
            t->entries[live++] = t->entries[i];
    t->n_entries = live;
    t->first = 0;
    Py_ssize_t cap = t->cap;
    if (cap == 0)
        cap = 8;
    while (live >= cap / 2 && cap < PY_SSIZE_T_MAX / 4 / (Py_ssize_t)sizeof(Entry))
        cap *= 2;
    if (cap != t->cap) {
        Entry *e = PyMem_Realloc(t->entries, (size_t)cap * sizeof(Entry));
        Py_ssize_t *ix = PyMem_Malloc((size_t)cap * 2 * sizeof(Py_ssize_t));
        if (e != NULL)
            t->entries = e;
        if (e == NULL || ix == NULL) {
            PyMem_Free(ix);
            PyErr_NoMemory();
            return -1;
        }
        PyMem_Free(t->index);
        t->index = ix;
        t->cap = cap;
    }
    t->mask = cap * 2 - 1;
    for (Py_ssize_t i = 0; i <= t->mask; i++)
        t->index[i] = EMPTY;
    for (Py_ssize_t n = 0; n < live; n++) {
        Entry *e = &t->entries[n];
        size_t i = (size_t)e->hash & (size_t)t->mask;
        for (size_t perturb = (size_t)e->hash; t->index[i] != EMPTY;
             perturb >>= 5, i = (i * 5 + perturb + 1) & (size_t)t->mask)
            ;
        t->index[i] = n;
    }
    return 0;
}

/* Room for a key of len bytes: a block, or PyMem_Malloc'd if longer. NULL on error. */
static char *
key_alloc(Pending *t, Py_ssize_t len)
{
    if (len > BLOCK)
        return PyMem_Malloc((size_t)len);
    if (t->free_blocks == NULL) {
        Py_ssize_t n = t->n_blocks / 8 > 1 ? t->n_blocks / 8 : 1;
        Chunk *c = PyMem_Malloc(sizeof(Chunk) + (size_t)n * sizeof(Block));
        if (c == NULL)
            return NULL;
        c->next = t->chunks;
        c->n = n;
        t->chunks = c;
        t->n_blocks += n;
        for (Py_ssize_t i = n; i-- > 0;) {
            c->blocks[i].next = t->free_blocks;
            t->free_blocks = &c->blocks[i];
        }
    }
    Block *b = t->free_blocks;
    t->free_blocks = b->next;
    return b->key;
}

static void
key_release(Pending *t, char *key, Py_ssize_t len)
{
    if (len > BLOCK) {
        PyMem_Free(key);
        return;
    }
    Block *b = (Block *)key;
    b->next = t->free_blocks;
    t->free_blocks = b;
}

/* key -> when, the key in room from key_alloc (written there, not on the stack and copied):
 * the table keeps it if new (0), else releases it (1: its place is kept); -1 on error. */
static int
put(Pending *t, char *key, Py_ssize_t len, double when)
{
    Py_hash_t hash = hash_key(key, len);
    Py_ssize_t slot = -1, at = find(t, key, len, hash, &slot);
    if (at >= 0) {
        t->entries[t->index[at]].when = when;
        key_release(t, key, len);
        return 1;
    }
    if (t->n_entries == t->cap) {
        if (resize(t) < 0) {
            key_release(t, key, len);
            return -1;
        }
        find(t, key, len, hash, &slot);
    }
    Entry *e = &t->entries[t->n_entries];
    e->key = key;
    e->len = len;
    e->hash = hash;
    e->when = when;
    t->index[slot] = t->n_entries++;
    t->used++;
    t->version++;
    return 0;
}

static void
delete_at(Pending *t, Py_ssize_t slot)
{
    Py_ssize_t ix = t->index[slot];
    t->index[slot] = DUMMY;
    key_release(t, t->entries[ix].key, t->entries[ix].len);
    t->entries[ix].key = NULL;
    t->used--;
    t->version++;
    while (t->first < t->n_entries && t->entries[t->first].key == NULL)
        t->first++;
}

/* Remove the key: 1 and *when if it was there, 0 if not. */
static int
take(Pending *t, const char *key, Py_ssize_t len, double *when)
{
    Py_ssize_t slot;
    Py_ssize_t at = find(t, key, len, hash_key(key, len), &slot);
    if (at < 0)
        return 0;
    *when = t->entries[t->index[at]].when;
    delete_at(t, at);
    return 1;
}

static void
clear(Pending *t)
{
    for (Py_ssize_t i = t->first; i < t->n_entries; i++)
        if (t->entries[i].len > BLOCK) /* PyMem_Malloc'd, or NULL in a hole */
            PyMem_Free(t->entries[i].key);
    while (t->chunks != NULL) {
        Chunk *c = t->chunks;
        t->chunks = c->next;
        PyMem_Free(c);
    }
    t->free_blocks = NULL;
    t->n_blocks = 0;
    PyMem_Free(t->entries);
    PyMem_Free(t->index);
    t->entries = NULL;
    t->index = NULL;
    t->n_entries = t->cap = t->used = t->first = t->mask = 0;
    t->version++;
}

/* ---- the C side (apply.c) ------------------------------------------------------------- */

int
pending_check(PyObject *obj)
{
    return Py_IS_TYPE(obj, &Pending_Type);
}

Py_ssize_t
pending_size(PyObject *obj)
{
    return ((Pending *)obj)->used;
}

int
pending_put(PyObject *obj, int action, const char *piece, Py_ssize_t plen,
            const char *remote, Py_ssize_t rlen, double when)
{
    Pending *t = (Pending *)obj;
    Py_ssize_t len = key_len(plen, rlen);
    char *key = len < 0 ? NULL : key_alloc(t, len);
    if (key == NULL)
        return len < 0 ? -1 : (PyErr_NoMemory(), -1);
    key_write(key, action, piece, plen, remote, rlen);
    return put(t, key, len, when);
}

int
pending_take(PyObject *obj, int action, const char *piece, Py_ssize_t plen,
             const char *remote, Py_ssize_t rlen, double *when)
{
    char buf[KEY_STACK], *heap;
    Py_ssize_t len = key_bytes(buf, &heap, action, piece, plen, remote, rlen);
    int rc = len < 0 ? -1 : take((Pending *)obj, heap ? heap : buf, len, when);
    if (heap != NULL)
        PyMem_Free(heap);
    return rc;
}

/* ---- the Python side -------------------------------------------------------------------- */

/* A Python key as bytes: 1 (*len, *heap as key_bytes), 0 if it cannot be a key (no such
 * entry: lookups miss, stores raise), -1 on error. */
static int
key_of(PyObject *key, char *buf, char **heap, Py_ssize_t *len)
{
    *heap = NULL;
    if (!PyTuple_Check(key) || PyTuple_GET_SIZE(key) != 3)
        return 0;
    PyObject *parts[3];
    for (int i = 0; i < 3; i++) {
        PyObject *s = PyTuple_GET_ITEM(key, i);
        if (!PyUnicode_Check(s))
            return 0;
        parts[i] = PyUnicode_IS_ASCII(s) ? (Py_INCREF(s), s)
                                          : PyUnicode_AsEncodedString(s, "utf-8", "surrogatepass");
        if (parts[i] == NULL) {
            while (i-- > 0)
                Py_DECREF(parts[i]);
            return -1;
        }
    }
    int action = -1;
    for (int a = 0; a < N_ACTIONS; a++)
        if (PyUnicode_Check(parts[1]) && PyUnicode_Compare(parts[1], s_action[a]) == 0)
            action = a;
    int rc = 0;
    if (action >= 0) {
        const char *p[2];
        Py_ssize_t n[2];
        for (int i = 0; i < 2; i++) {
            PyObject *s = parts[i * 2];
            p[i] = PyUnicode_Check(s) ? (const char *)PyUnicode_DATA(s) : PyBytes_AS_STRING(s);
            n[i] = PyUnicode_Check(s) ? PyUnicode_GET_LENGTH(s) : PyBytes_GET_SIZE(s);
        }
        *len = key_bytes(buf, heap, action, p[0], n[0], p[1], n[1]);
        rc = *len < 0 ? -1 : 1;
    }
    for (int i = 0; i < 3; i++)
        Py_DECREF(parts[i]);
    return rc;
}

PyObject *
key_object(const Entry *e)
{
    uint32_t plen;
    memcpy(&plen, e->key + 1, 4);
    const char *piece = e->key + 5, *remote = piece + plen;
    PyObject *p = PyUnicode_DecodeUTF8(piece, plen, "surrogatepass");
    PyObject *r = PyUnicode_DecodeUTF8(remote, e->len - 5 - plen, "surrogatepass");
    PyObject *key = p && r ? PyTuple_Pack(3, p, s_action[(int)e->key[0]], r) : NULL;
    Py_XDECREF(p);
    Py_XDECREF(r);
    return key;
}

/* The entry of a Python key: its index slot, -1 if none, -2 on error. */
static Py_ssize_t
lookup(Pending *t, PyObject *key)
{
    char buf[KEY_STACK], *heap;
    Py_ssize_t len, slot;
    int ok = key_of(key, buf, &heap, &len);
    if (ok <= 0)
        return ok < 0 ? -2 : -1;
    const char *k = heap ? heap : buf;
    Py_ssize_t at = find(t, k, len, hash_key(k, len), &slot);
    PyMem_Free(heap);
    return at;
}

static Py_ssize_t
p_len(PyObject *self)
{
    return ((Pending *)self)->used;
}

static int
p_contains(PyObject *self, PyObject *key)
{
    Py_ssize_t at = lookup((Pending *)self, key);
    return at == -2 ? -1 : at >= 0;
}

static PyObject *
p_getitem(PyObject *self, PyObject *key)
{
    Pending *t = (Pending *)self;
    Py_ssize_t at = lookup(t, key);
    if (at == -2)
        return NULL;
    if (at < 0) {
        PyErr_SetObject(PyExc_KeyError, key);
        return NULL;
    }
    return PyFloat_FromDouble(t->entries[t->index[at]].when);
}

static int
p_setitem(PyObject *self, PyObject *key, PyObject *value)
{
    Pending *t = (Pending *)self;
    if (value == NULL) {
        Py_ssize_t at = lookup(t, key);
        if (at == -1)
            PyErr_SetObject(PyExc_KeyError, key);
        if (at < 0)
            return -1;
        delete_at(t, at);
        return 0;
    }
    double when = PyFloat_AsDouble(value);
    if (when == -1.0 && PyErr_Occurred())
        return -1;
    char buf[KEY_STACK], *heap;
    Py_ssize_t len;
    int ok = key_of(key, buf, &heap, &len);
    if (ok == 0)
        PyErr_SetString(PyExc_TypeError, "a pairing key is (piece, action, remote): three "
                                         "strings, the action one of parser.ACTIONS");
    char *copy = ok <= 0 ? NULL : key_alloc(t, len);
    if (copy != NULL)
        memcpy(copy, heap ? heap : buf, (size_t)len);
    else if (ok > 0)
        PyErr_NoMemory();
    PyMem_Free(heap);
    return copy == NULL || put(t, copy, len, when) < 0 ? -1 : 0;
}

/* keys, values or items (0, 1, 2) as a list, in insertion order */
static PyObject *
listing(Pending *t, int what)
{
    PyObject *out = PyList_New(t->used);
    Py_ssize_t n = 0;
    for (Py_ssize_t i = t->first; out != NULL && i < t->n_entries; i++) {
        const Entry *e = &t->entries[i];
        if (e->key == NULL)
            continue;
        PyObject *k = what != 1 ? key_object(e) : NULL;
        PyObject *v = what != 0 ? PyFloat_FromDouble(e->when) : NULL;
        PyObject *item = what == 0 ? k : what == 1 ? v : (k && v ? PyTuple_Pack(2, k, v) : NULL);
        if (what == 2) {
            Py_XDECREF(k);
            Py_XDECREF(v);
        }
        if (item == NULL)
            Py_CLEAR(out);
        else
            PyList_SET_ITEM(out, n++, item);
    }
    return out;
}

static PyObject *p_keys(PyObject *self, PyObject *unused) { return listing((Pending *)self, 0); }
static PyObject *p_values(PyObject *self, PyObject *unused) { return listing((Pending *)self, 1); }
static PyObject *p_items(PyObject *self, PyObject *unused) { return listing((Pending *)self, 2); }

static PyObject *
p_pop_or_get(PyObject *self, PyObject *args, int pop)
{
    Pending *t = (Pending *)self;
    PyObject *key, *dflt = pop ? NULL : Py_None;
    if (!PyArg_UnpackTuple(args, pop ? "pop" : "get", 1, 2, &key, &dflt))
        return NULL;
    Py_ssize_t at = lookup(t, key);
    if (at == -2)
        return NULL;
    if (at < 0) {
        if (dflt == NULL)
            PyErr_SetObject(PyExc_KeyError, key);
        else
            Py_INCREF(dflt);
        return dflt;
    }
    PyObject *v = PyFloat_FromDouble(t->entries[t->index[at]].when);
    if (v != NULL && pop)
        delete_at(t, at);
    return v;
}

static PyObject *p_pop(PyObject *self, PyObject *args) { return p_pop_or_get(self, args, 1); }
static PyObject *p_get(PyObject *self, PyObject *args) { return p_pop_or_get(self, args, 0); }

static PyObject *
p_clear(PyObject *self, PyObject *unused)
{
    clear((Pending *)self);
    Py_RETURN_NONE;
}

/* expire(horizon): drop the starts older than horizon (NaN too, as `when >= horizon` is
 * False for it); returns their actions, in insertion order. */
static PyObject *
p_expire(PyObject *self, PyObject *arg)
{
    Pending *t = (Pending *)self;
    double horizon = PyFloat_AsDouble(arg);
    if (horizon == -1.0 && PyErr_Occurred())
        return NULL;
    PyObject *out = PyList_New(0);
    for (Py_ssize_t i = t->first; out != NULL && i < t->n_entries; i++) {
        Entry *e = &t->entries[i];
        if (e->key == NULL || e->when >= horizon)
            continue;
        if (PyList_Append(out, s_action[(int)e->key[0]]) < 0) {
            Py_CLEAR(out);
            break;
        }
        Py_ssize_t slot;
        delete_at(t, find(t, e->key, e->len, e->hash, &slot));
    }
    return out;
}

static void
p_dealloc(PyObject *self)
{
    clear((Pending *)self);
    Py_TYPE(self)->tp_free(self);
}

static PyMappingMethods p_mapping = {p_len, p_getitem, p_setitem};
static PySequenceMethods p_sequence = {.sq_contains = p_contains};
static PyMethodDef p_methods[] = {
    {"keys", p_keys, METH_NOARGS, NULL},
    {"values", p_values, METH_NOARGS, NULL},
    {"items", p_items, METH_NOARGS, "[(key, when), ...] in insertion order"},
    {"pop", p_pop, METH_VARARGS, NULL},
    {"get", p_get, METH_VARARGS, NULL},
    {"clear", p_clear, METH_NOARGS, NULL},
    {"expire", p_expire, METH_O, "expire(horizon) -> the actions of the starts dropped"},
    {NULL, NULL, 0, NULL},
};

PyTypeObject Pending_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "exporter._hotpath.Pending",
    .tp_basicsize = sizeof(Pending),
    .tp_dealloc = p_dealloc,
    .tp_as_mapping = &p_mapping,
    .tp_as_sequence = &p_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "NodeState.pending in C: (piece, action, remote) -> start time, insertion order",
    .tp_iter = pending_iter,
    .tp_methods = p_methods,
    .tp_new = PyType_GenericNew,
};

int
pending_ready(void)
{
    return PyType_Ready(&Pending_Type) < 0 || PyType_Ready(&PendingIter_Type) < 0 ? -1 : 0;
}
