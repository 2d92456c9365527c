/* GeoRecorder.record's common case in C (exporter/geo/recorder.py). */
#include "hotpath.h"

void
geo_forget(Ctx *ctx)
{
    ctx->have_geo = 0;
    Py_CLEAR(ctx->geo_cur);
    Py_CLEAR(ctx->geo_cache);
}

/*
 * GeoRecorder.record(action, remote, size, now) when everything it needs is already there:
 * the time is inside the current slot, the host is in the locator's young cache, and the
 * window key has an entry in the current slot. Then it only adds to that entry, as Python
 * does. Returns 1 when done, 0 when Python's record must do it (it then starts afresh), -1
 * on error. Keep in step with exporter/geo/recorder.py.
 */
int
geo_record_fast(Ctx *ctx, const CommonLine *c, PyObject *action)
{
    double now = ctx->read_time_value;
    if (!ctx->have_geo) {
        PyObject *locator = PyObject_GetAttrString(ctx->geo, "locator");
        ctx->geo_cache = locator ? PyObject_GetAttrString(locator, "cache") : NULL;
        Py_XDECREF(locator);
        ctx->geo_cur = ctx->geo_cache ? PyObject_GetAttrString(ctx->geo, "_cur") : NULL;
        if (ctx->geo_clock == NULL && ctx->geo_cur != NULL)
            ctx->geo_clock = PyObject_GetAttrString(ctx->geo, "_clock");
        if (ctx->geo_cur == NULL || ctx->geo_clock == NULL ||
            attr_double(ctx->geo, a_geo_slot_end, &ctx->geo_slot_end) < 0) {
            geo_forget(ctx); /* not a GeoRecorder as this code knows it: Python does it */
            if (!PyErr_ExceptionMatches(PyExc_AttributeError))
                return -1;
            PyErr_Clear();
            return 0;
        }
        if (!PyDict_CheckExact(ctx->geo_cache) || !PyDict_CheckExact(ctx->geo_cur)) {
            geo_forget(ctx);
            return 0;
        }
        ctx->have_geo = 1;
    }
    if (!ctx->have_read_time) { /* record() asks the recorder's clock */
        PyObject *t = PyObject_CallNoArgs(ctx->geo_clock);
        if (t == NULL)
            return -1;
        now = PyFloat_AsDouble(t);
        Py_DECREF(t);
        if (now == -1.0 && PyErr_Occurred())
            return -1;
    }
    if (now >= ctx->geo_slot_end)
        return 0;
    /* host = remote_address.rpartition(":")[0] or remote_address */
    Py_ssize_t n = c->remote_len;
    while (n > 0 && c->remote[n - 1] != ':')
        n--;
    n = n > 1 ? n - 1 : c->remote_len;
    PyObject *host = PyUnicode_DecodeASCII(c->remote, n, NULL);
    if (host == NULL)
        return -1;
    PyObject *bucket = PyDict_GetItemWithError(ctx->geo_cache, host);
    Py_DECREF(host);
    if (bucket == NULL || !PyDict_Check(bucket))
        return PyErr_Occurred() ? -1 : 0;
    PyObject *key = PyDict_GetItemWithError(bucket, action);
    PyObject *entry = key ? PyDict_GetItemWithError(ctx->geo_cur, key) : NULL;
    if (entry == NULL || !PyList_CheckExact(entry) || PyList_GET_SIZE(entry) != 2)
        return PyErr_Occurred() ? -1 : 0;
    PyObject *one = PyLong_FromLong(1), *size = PyLong_FromLongLong(c->size);
    PyObject *count = one ? PyNumber_Add(PyList_GET_ITEM(entry, 0), one) : NULL;
    PyObject *bytes = size ? PyNumber_Add(PyList_GET_ITEM(entry, 1), size) : NULL;
    Py_XDECREF(one);
    Py_XDECREF(size);
    if (count == NULL || bytes == NULL) {
        Py_XDECREF(count);
        Py_XDECREF(bytes);
        return -1;
    }
    PyList_SetItem(entry, 0, count); /* steals */
    PyList_SetItem(entry, 1, bytes);
    return 1;
}

