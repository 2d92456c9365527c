/* Iteration over the keys of a Pending (pending.c): lazy, since NodeState._evict_oldest
 * takes only the first few, and it fails as a dict's does when the table changes. */
#include "hotpath.h"
#include "pending.h"

typedef struct {
    PyObject_HEAD
    Pending *table;
    Py_ssize_t pos;
    unsigned long long version;
} PendingIter;

PyObject *
pending_iter(PyObject *self)
{
    PendingIter *it = PyObject_New(PendingIter, &PendingIter_Type);
    if (it == NULL)
        return NULL;
    Py_INCREF(self);
    it->table = (Pending *)self;
    it->pos = it->table->first;
    it->version = it->table->version;
    return (PyObject *)it;
}

static PyObject *
iter_next(PyObject *self)
{
    PendingIter *it = (PendingIter *)self;
    Pending *t = it->table;
    if (t->version != it->version) {
        PyErr_SetString(PyExc_RuntimeError, "Pending changed during iteration");
        return NULL;
    }
    while (it->pos < t->n_entries && t->entries[it->pos].key == NULL)
        it->pos++;
    if (it->pos >= t->n_entries)
        return NULL;
    return key_object(&t->entries[it->pos++]);
}

static void
iter_dealloc(PyObject *self)
{
    Py_DECREF(((PendingIter *)self)->table);
    PyObject_Free(self);
}

PyTypeObject PendingIter_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "exporter._hotpath.PendingIterator",
    .tp_basicsize = sizeof(PendingIter),
    .tp_dealloc = iter_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = iter_next,
};
