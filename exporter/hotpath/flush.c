/* Writing back to the NodeState what the scan added up in C (see write_back). */
#include "hotpath.h"

int
dict_add_long(PyObject *dict, PyObject *key, long long delta)
{
    PyObject *d = PyLong_FromLongLong(delta);
    if (d == NULL)
        return -1;
    PyObject *old = PyDict_GetItemWithError(dict, key);
    PyObject *sum = old != NULL ? PyNumber_Add(old, d) : NULL;
    int rc = -1;
    if (old == NULL && !PyErr_Occurred())
        rc = PyDict_SetItem(dict, key, d);
    else if (sum != NULL)
        rc = PyDict_SetItem(dict, key, sum);
    Py_DECREF(d);
    Py_XDECREF(sum);
    return rc;
}

int
attr_double(PyObject *obj, PyObject *name, double *out)
{
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL)
        return -1;
    *out = PyFloat_AsDouble(v);
    Py_DECREF(v);
    return (*out == -1.0 && PyErr_Occurred()) ? -1 : 0;
}

int
set_attr_double(PyObject *obj, PyObject *name, double value)
{
    PyObject *v = PyFloat_FromDouble(value);
    if (v == NULL)
        return -1;
    int rc = PyObject_SetAttr(obj, name, v);
    Py_DECREF(v);
    return rc;
}

static int
flush_hist(Hist *h, int full)
{
    h->sum_stale = 1; /* Python may run next: re-read hist.sum then */
    if (h->sum_dirty && set_attr_double(h->hist, a_sum, h->sum) < 0)
        return -1;
    h->sum_dirty = 0;
    if (!full || !h->dirty)
        return 0;
    h->dirty = 0;
    for (Py_ssize_t i = 0; i <= h->n; i++) {
        if (h->add[i] == 0)
            continue;
        PyObject *d = PyLong_FromLongLong(h->add[i]);
        PyObject *n = d ? PyNumber_Add(PyList_GET_ITEM(h->counts, i), d) : NULL;
        Py_XDECREF(d);
        if (n == NULL)
            return -1;
        PyList_SetItem(h->counts, i, n); /* steals n */
        h->add[i] = 0;
    }
    return 0;
}

/* dict[key] += *delta, now when `full` or when the key is not in the dict yet (so that it
 * takes the place in the dict's order Python would give it); otherwise at the full flush.
 * *known: the key is in the dict (keys are never removed while a batch runs). */
int
counter_add(PyObject *dict, PyObject *key, long long *delta, unsigned char *known, int full)
{
    if (!full && !*known) {
        int has = PyDict_Contains(dict, key);
        if (has < 0)
            return -1;
        *known = (unsigned char)has;
    }
    if (!full && *known)
        return 0;
    int rc = dict_add_long(dict, key, *delta);
    *delta = 0;
    *known = rc == 0;
    return rc;
}

/* The noted counts (hotpath.h note), in line order: a new key goes in now, in full or not;
 * a key found in the dict waits for the full flush, as the others. */
int
noted_back(Ctx *ctx, int full)
{
    int rc = 0;
    for (int i = 0; i < ctx->n_noted; i++) {
        *ctx->noted[i].known = 0;
        if (*ctx->noted[i].delta != 0 && counter_add(ctx->noted[i].dict, ctx->noted[i].key,
                                                     ctx->noted[i].delta, ctx->noted[i].known,
                                                     full) < 0)
            rc = -1;
    }
    ctx->n_noted = 0;
    return rc;
}

/*
 * Write back what was added up in C, and forget what Python code may change. `full` (the
 * end of the batch, a cache that starts over) writes everything. Otherwise (Python runs
 * next) it writes what Python could see or order differently: the last timestamp, the
 * clocks, the available space, the histogram sums (float additions must happen in line
 * order), and a counter whose key is new (the noted ones first, in line order); the
 * integer counters Python only adds to (lines, in_flight, transfers, bytes, requested,
 * bucket counts) wait for the full flush, since additions commute and nothing reads them
 * while the batch runs. The Histogram objects and the satellite keys stay cached: Python
 * adds to a Histogram in place (its sum is re-read, see observe) and never drops a series
 * while the batch runs.
 *
 * `plain`: the Python line next cannot be a piece transfer (events.c may_be_transfer). Such
 * a line counts lines, events and housekeeping and may give a satellite its zero series; it
 * touches no histogram of the scan, clock, pairing table, geo window, free space, reason or
 * in-flight count, so those stay in C (writing and re-reading them cost ~7k instructions).
 */
static int
write_back_as(Ctx *ctx, int full, int plain)
{
    int rc = 0;
    if (!plain) {
        for (int i = 0; i < ctx->n_hists; i++)
            if (flush_hist(&ctx->hists[i], full) < 0)
                rc = -1;
        Py_CLEAR(ctx->pending);
        if (geo_adds_flush(ctx) < 0)
            rc = -1;
        geo_forget(ctx);
        if (ctx->newest_dirty && set_attr_double(ctx->state, a_newest, ctx->newest) < 0)
            rc = -1;
        ctx->have_clocks = ctx->newest_dirty = 0;
    }
    if (noted_back(ctx, full) < 0) /* first: the keys that may be new, in line order */
        rc = -1;
    if (!ctx->dirty)
        return rc;
    ctx->dirty = !full; /* deferred counters remain */
    if (ctx->last_ts != NULL) {
        PyObject *ts = PyUnicode_DecodeASCII(ctx->last_ts, ctx->last_ts_len, NULL);
        if (ts == NULL || PyObject_SetAttr(ctx->state, a_last_timestamp, ts) < 0)
            rc = -1;
        Py_XDECREF(ts);
        ctx->last_ts = NULL;
    }
    if (ctx->avail_dirty && !plain) {
        PyObject *v = PyLong_FromLongLong(ctx->avail);
        if (v == NULL || PyObject_SetAttr(ctx->state, a_available_space, v) < 0)
            rc = -1;
        Py_XDECREF(v);
        ctx->avail_dirty = 0;
    }
    for (int l = 0; l < N_LEVELS; l++)
        if (counter(ctx->lines, s_level[l], &ctx->levels[l], &ctx->known_lines[l], full) < 0)
            rc = -1;
    if (!plain && reasons_write_back(ctx, full) < 0)
        rc = -1;
    if (events_write_back(ctx, full) < 0)
        rc = -1;
    for (int a = 0; a < N_ACTIONS && !plain; a++)
        if (counter(ctx->in_flight, s_action[a], &ctx->in_flight_add[a],
                    &ctx->known_in_flight[a], full) < 0)
            rc = -1;
    for (int i = 0; i < ctx->n_sats; i++) {
        Satellite *s = &ctx->sats[i];
        if (!s->dirty)
            continue;
        s->dirty = !full;
        for (int k = 0; k < CELLS; k++)
            if (counter(ctx->transfers, s->keys[k], &s->transfers[k], &s->known[0][k], full) ||
                counter(ctx->bytes, s->keys[k], &s->bytes[k], &s->known[1][k], full) ||
                counter(ctx->requested, s->keys[k], &s->requested[k], &s->known[2][k], full))
                rc = -1;
    }
    return rc;
}

int
write_back(Ctx *ctx, int full)
{
    return write_back_as(ctx, full, 0);
}

int
write_back_plain(Ctx *ctx)
{
    return write_back_as(ctx, 0, 1);
}

int
flush(Ctx *ctx)
{
    return write_back(ctx, 1);
}

