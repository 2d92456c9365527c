/*
 * GeoRecorder.record's common cases in C (exporter/geo/recorder.py, exporter/geo/locator.py).
 *
 * Why: with hundreds of thousands of distinct peers nearly every transfer misses the host
 * cache, and one call into Python per miss capped `report --geoip-db` at ~77 % of the
 * throughput without geo even when the call did nothing. So a public dotted-quad host is
 * answered here from the locator's answers per database network (``_v4_nets``: /8, /16,
 * /24), any other host from the host cache (young generation, or the old one: promoted and
 * the young one rotated when full, as GeoLocator.lookup_miss does). The host cache is not
 * filled for what the network answers cover (``locator.misses`` counts Python's misses
 * only); the answers are the same either way. A private IPv4 host is counted per host here
 * too (record_private). What needs the database, an address the caches do not know, a window
 * key not yet in the current slot or a new slot goes to Python's record(). Keep in step with
 * the Python code (tests/test_hotpath_geo.py compares the two).
 */
#include "hotpath.h"
#include <limits.h>

#include <time.h>

/* attribute names (interned on first use: module.c is shared with the other C files) */
enum { G_LOCATOR, G_CACHE, G_OLD, G_V4_NETS, G_GENERATION, G_CUR, G_CUR_PRIVATE, G_CLOCK, G_N };
static const char *g_names[G_N] = {"locator", "cache",        "_old",  "_v4_nets", "_generation",
                                   "_cur",    "_cur_private", "_clock"};
static PyObject *g_attr[G_N];
/* the first bytes of the PRIVATE_V4 networks (intern_names): most public peers need no
 * further test */
static unsigned char PRIVATE_FIRST[256];
/* the window keys of private peers, (action, "", "private"), and the key of the private
 * hosts past recorder._MAX_PRIVATE_HOSTS */
static PyObject *private_keys[N_ACTIONS], *private_rest;
#define MAX_PRIVATE_HOSTS 32

/* locator._PRIVATE_V4 as (network, shift): tests/test_hotpath_geo.py checks both ends of
 * each network against the Python locator */
static const struct {
    unsigned int net, shift;
} PRIVATE_V4[] = {
    {10u, 24}, {(172u << 4) | 1u, 20}, {(192u << 8) | 168u, 16}, {127u, 24},
    {(169u << 8) | 254u, 16}, {(100u << 2) | 1u, 22},
};

void
geo_forget(Ctx *ctx)
{
    ctx->have_geo = 0;
    Py_CLEAR(ctx->geo_cur);
    Py_CLEAR(ctx->geo_cache);
    Py_CLEAR(ctx->geo_locator);
    Py_CLEAR(ctx->geo_old);
    Py_CLEAR(ctx->geo_nets);
    Py_CLEAR(ctx->geo_cur_private);
    if (ctx->geo_memo_used) {
        for (int i = 0; i < GEO_MEMO; i++) {
            Py_CLEAR(ctx->geo_memo[i].bucket);
            Py_CLEAR(ctx->geo_memo[i].entry);
        }
        ctx->geo_memo_used = 0;
    }
    if (ctx->geo_n8_used) {
        for (int i = 0; i < 256; i++)
            Py_CLEAR(ctx->geo_n8[i]);
        memset(ctx->geo_n8_known, 0, sizeof(ctx->geo_n8_known));
        ctx->geo_n8_used = 0;
    }
}

static int
intern_names(void)
{
    for (int i = 0; i < G_N; i++)
        if (g_attr[i] == NULL && (g_attr[i] = PyUnicode_InternFromString(g_names[i])) == NULL)
            return -1;
    if (private_rest == NULL && (private_rest = PyUnicode_InternFromString("*")) == NULL)
        return -1;
    for (size_t i = 0; i < sizeof(PRIVATE_V4) / sizeof(PRIVATE_V4[0]); i++) /* shifts >= 16 */
        PRIVATE_FIRST[(PRIVATE_V4[i].net << PRIVATE_V4[i].shift) >> 24] = 1;
    return 0;
}

/* obj.name as a new reference of the exact type wanted, or NULL (AttributeError or
 * TypeError set) */
static PyObject *
attr_of(PyObject *obj, int name, PyTypeObject *type)
{
    PyObject *v = PyObject_GetAttr(obj, g_attr[name]);
    if (v != NULL && Py_TYPE(v) != type) {
        PyErr_Format(PyExc_TypeError, "%U is not a %s", g_attr[name], type->tp_name);
        Py_CLEAR(v);
    }
    return v;
}

/* Everything geo_record_fast reads, fetched once and kept until Python code runs. 1 when
 * done, 0 when this is not a recorder as this code knows it (Python does it), -1 on error. */
static int
geo_fetch(Ctx *ctx)
{
    PyObject *generation = NULL;
    ctx->geo_locator = PyObject_GetAttr(ctx->geo, g_attr[G_LOCATOR]);
    if (ctx->geo_locator == NULL ||
        (ctx->geo_cache = attr_of(ctx->geo_locator, G_CACHE, &PyDict_Type)) == NULL ||
        (ctx->geo_old = attr_of(ctx->geo_locator, G_OLD, &PyDict_Type)) == NULL ||
        (ctx->geo_nets = attr_of(ctx->geo_locator, G_V4_NETS, &PyTuple_Type)) == NULL ||
        (generation = attr_of(ctx->geo_locator, G_GENERATION, &PyLong_Type)) == NULL ||
        (ctx->geo_cur = attr_of(ctx->geo, G_CUR, &PyDict_Type)) == NULL ||
        (ctx->geo_cur_private = attr_of(ctx->geo, G_CUR_PRIVATE, &PyDict_Type)) == NULL ||
        attr_double(ctx->geo, a_geo_slot_end, &ctx->geo_slot_end) < 0)
        goto other;
    ctx->geo_generation = PyLong_AsSsize_t(generation);
    if (PyErr_Occurred())
        goto other;
    if (PyTuple_GET_SIZE(ctx->geo_nets) != 3)
        goto other_type;
    for (int i = 0; i < 3; i++)
        if (!PyDict_CheckExact(PyTuple_GET_ITEM(ctx->geo_nets, i)))
            goto other_type;
    Py_DECREF(generation);
    ctx->have_geo = 1;
    return 1;
other:
    if (!PyErr_ExceptionMatches(PyExc_AttributeError) &&
        !PyErr_ExceptionMatches(PyExc_TypeError) && !PyErr_ExceptionMatches(PyExc_OverflowError))
        goto error;
    PyErr_Clear();
other_type:
    Py_XDECREF(generation);
    geo_forget(ctx);
    return 0;
error:
    Py_XDECREF(generation);
    geo_forget(ctx);
    return -1;
}

/* A dotted quad as socket.inet_pton(AF_INET) reads it (1-3 digits, no leading zero, <= 255,
 * four parts, nothing else); 0 for anything else, which Python then reads. */
static int
parse_v4(const char *s, Py_ssize_t n, unsigned int *out)
{
    const char *p = s, *end = s + n;
    unsigned int value = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0 && (p >= end || *p++ != '.'))
            return 0;
        /* one to three digits, unrolled; a leading zero only alone */
        if (p >= end || (unsigned)(*p - '0') > 9)
            return 0;
        unsigned int octet = (unsigned)(*p++ - '0');
        if (p < end && (unsigned)(*p - '0') <= 9) {
            if (octet == 0)
                return 0;
            octet = octet * 10 + (unsigned)(*p++ - '0');
            if (p < end && (unsigned)(*p - '0') <= 9) {
                octet = octet * 10 + (unsigned)(*p++ - '0');
                if (octet > 255)
                    return 0;
            }
        }
        value = value << 8 | octet;
    }
    if (p != end)
        return 0;
    *out = value;
    return 1;
}

static int
is_private(unsigned int ip)
{
    if (!PRIVATE_FIRST[ip >> 24])
        return 0;
    for (size_t i = 0; i < sizeof(PRIVATE_V4) / sizeof(PRIVATE_V4[0]); i++)
        if (ip >> PRIVATE_V4[i].shift == PRIVATE_V4[i].net)
            return 1;
    return 0;
}

/* The bucket of a public address in locator._v4_nets (a new reference), NULL without an
 * error when it has none. */
static PyObject *
net_bucket(Ctx *ctx, unsigned int ip)
{
    unsigned int first = ip >> 24; /* the /8 level: remembered until geo_forget */
    if (!ctx->geo_n8_known[first]) {
        PyObject *prefix = PyLong_FromUnsignedLong(first);
        PyObject *bucket = prefix ? PyDict_GetItemWithError(PyTuple_GET_ITEM(ctx->geo_nets, 0),
                                                            prefix) : NULL;
        Py_XDECREF(prefix);
        if (bucket == NULL && PyErr_Occurred())
            return NULL;
        ctx->geo_n8[first] = Py_XNewRef(bucket);
        ctx->geo_n8_known[first] = 1;
        ctx->geo_n8_used = 1;
    }
    if (ctx->geo_n8[first] != NULL)
        return Py_NewRef(ctx->geo_n8[first]);
    for (int level = 1; level < 3; level++) {
        PyObject *prefix = PyLong_FromUnsignedLong(ip >> (24 - 8 * level));
        if (prefix == NULL)
            return NULL;
        PyObject *bucket = PyDict_GetItemWithError(PyTuple_GET_ITEM(ctx->geo_nets, level), prefix);
        Py_DECREF(prefix);
        if (bucket != NULL) {
            Py_INCREF(bucket);
            return bucket;
        }
        if (PyErr_Occurred())
            return NULL;
    }
    return NULL;
}

/* The young generation's bucket of a host missing there (a new reference), as
 * GeoLocator.lookup_miss answers it from the old generation: promoted, the young one rotated
 * when full. NULL without an error when Python must look the host up. */
static PyObject *
promote(Ctx *ctx, PyObject *host)
{
    PyObject *bucket = PyDict_GetItemWithError(ctx->geo_old, host);
    if (bucket == NULL)
        return NULL;
    Py_INCREF(bucket); /* the rotation below drops the old generation */
    if (PyDict_GET_SIZE(ctx->geo_cache) >= ctx->geo_generation) { /* young becomes old */
        /* Python code that ran since the fetch (TopPieces.add) may have let another node's
         * thread reload the shared locator: never put back generations it dropped */
        PyObject *cache = PyObject_GetAttr(ctx->geo_locator, g_attr[G_CACHE]);
        Py_XDECREF(cache); /* only compared */
        if (cache != ctx->geo_cache) {
            Py_DECREF(bucket);
            geo_forget(ctx);
            return NULL; /* Python looks again (an error stays set) */
        }
        PyObject *young = PyDict_New();
        if (young == NULL ||
            PyObject_SetAttr(ctx->geo_locator, g_attr[G_OLD], ctx->geo_cache) < 0 ||
            PyObject_SetAttr(ctx->geo_locator, g_attr[G_CACHE], young) < 0) {
            Py_XDECREF(young);
            goto error;
        }
        Py_SETREF(ctx->geo_old, ctx->geo_cache);
        ctx->geo_cache = young;
    }
    if (PyDict_SetItem(ctx->geo_cache, host, bucket) < 0)
        goto error;
    return bucket;
error:
    Py_DECREF(bucket);
    geo_forget(ctx); /* a partial update: refetch */
    return NULL;
}

/* The bucket of the remote address's host (a new reference); NULL without an error when
 * Python must answer. A public dotted quad is answered from the network answers first: they
 * are exact (a network's record is the answer for every address in it, and both caches are
 * dropped together on reload) and a probe of the small int-keyed dicts costs less than
 * building the host string and probing the big host cache. */
static PyObject *
host_bucket(Ctx *ctx, const char *text, Py_ssize_t n, int *private)
{
    unsigned int ip;
    int v4 = parse_v4(text, n, &ip);
    if (v4) {
        if ((*private = is_private(ip)))
            return NULL; /* see record_private */
        PyObject *bucket = net_bucket(ctx, ip);
        if (bucket != NULL || PyErr_Occurred())
            return bucket;
    }
    PyObject *host = PyUnicode_DecodeASCII(text, n, NULL);
    if (host == NULL)
        return NULL;
    PyObject *bucket = PyDict_GetItemWithError(ctx->geo_cache, host);
    if (bucket != NULL)
        Py_INCREF(bucket);
    else if (!PyErr_Occurred())
        bucket = promote(ctx, host);
    Py_DECREF(host);
    return bucket;
}

/* time.time, to call clock_gettime directly when it is the recorder's clock */
static PyObject *time_time;

/* The recorder's clock (record() asks it when there is no read time); -1 on error. */
static int
clock_now(Ctx *ctx, double *now)
{
    if (ctx->geo_clock == NULL) {
        if (time_time == NULL) {
            PyObject *time = PyImport_ImportModule("time");
            time_time = time ? PyObject_GetAttrString(time, "time") : NULL;
            Py_XDECREF(time);
            if (time_time == NULL)
                return -1;
        }
        if ((ctx->geo_clock = PyObject_GetAttr(ctx->geo, g_attr[G_CLOCK])) == NULL)
            return -1;
    }
    struct timespec ts;
    if (ctx->geo_clock == time_time && clock_gettime(CLOCK_REALTIME, &ts) == 0) {
        /* what time.time() returns (_PyTime_AsSecondsDouble), without the float object */
        volatile double d;
        long long ns = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
        if (ts.tv_nsec == 0)
            d = (double)ts.tv_sec;
        else {
            d = (double)ns;
            d /= 1e9;
        }
        *now = d;
        return 0;
    }
    PyObject *t = PyObject_CallNoArgs(ctx->geo_clock);
    if (t == NULL)
        return -1;
    *now = PyFloat_AsDouble(t);
    Py_DECREF(t);
    if (*now == -1.0 && PyErr_Occurred())
        return -1;
    if (!PyCFunction_Check(ctx->geo_clock))
        geo_forget(ctx); /* Python code ran (and may have let another thread in) */
    return 0;
}

/* entry[0] += 1; entry[1] += size, for an entry of the current slot: 1, or -1 on error */
/* entry[0] += transfers; entry[1] += size (Python ints: no bound). Once a batch per entry
 * (add_to_entry below adds up in C), so no fast path for small ints is worth its lines. */
static int
add_now(PyObject *entry, long long transfers, long long size)
{
    PyObject *dn = PyLong_FromLongLong(transfers), *db = PyLong_FromLongLong(size);
    PyObject *count = dn ? PyNumber_Add(PyList_GET_ITEM(entry, 0), dn) : NULL;
    PyObject *bytes = db ? PyNumber_Add(PyList_GET_ITEM(entry, 1), db) : NULL;
    Py_XDECREF(dn);
    Py_XDECREF(db);
    if (count == NULL || bytes == NULL) {
        Py_XDECREF(count);
        Py_XDECREF(bytes);
        return -1;
    }
    PyList_SetItem(entry, 0, count); /* steals */
    PyList_SetItem(entry, 1, bytes);
    return 1;
}

/*
 * entry[0] += 1; entry[1] += size, as GeoRecorder.record does, deferred: the sums wait in
 * ctx->geo_adds until geo_adds_flush (before any Python code that may look at the window, and
 * at the end of the batch), so a transfer costs two additions in C instead of four int
 * objects. The scrape's snapshot reads the live slot without the state lock: it sees a
 * transfer once its batch is written back (before, once its line was applied).
 */
static int
add_to_entry(Ctx *ctx, PyObject *entry, long long size)
{
    size_t i = ((size_t)entry >> 4) % GEO_ADDS;
    if (ctx->geo_adds[i].entry != entry || ctx->geo_adds[i].bytes > LLONG_MAX - size) {
        if (ctx->geo_adds[i].entry != NULL) {
            int rc = add_now(ctx->geo_adds[i].entry, ctx->geo_adds[i].count,
                             ctx->geo_adds[i].bytes);
            Py_CLEAR(ctx->geo_adds[i].entry);
            if (rc < 0)
                return -1;
        }
        ctx->geo_adds[i].entry = Py_NewRef(entry);
        ctx->geo_adds[i].count = ctx->geo_adds[i].bytes = 0;
        ctx->geo_adds_used = 1;
    }
    ctx->geo_adds[i].count++;
    ctx->geo_adds[i].bytes += size;
    return 1;
}

int
geo_adds_flush(Ctx *ctx)
{
    int rc = 0;
    if (!ctx->geo_adds_used)
        return 0;
    for (int i = 0; i < GEO_ADDS; i++) {
        if (ctx->geo_adds[i].entry == NULL)
            continue;
        if (rc == 0 && add_now(ctx->geo_adds[i].entry, ctx->geo_adds[i].count,
                               ctx->geo_adds[i].bytes) < 0)
            rc = -1;
        Py_CLEAR(ctx->geo_adds[i].entry);
    }
    ctx->geo_adds_used = 0;
    return rc;
}

/* The entry of the current slot for key, borrowed; NULL without an error when there is none
 * (a new key: GeoRecorder._new_key, in Python) */
static PyObject *
slot_entry(Ctx *ctx, PyObject *key)
{
    PyObject *entry = PyDict_GetItemWithError(ctx->geo_cur, key);
    if (entry == NULL || !PyList_CheckExact(entry) || PyList_GET_SIZE(entry) != 2)
        return NULL;
    return entry;
}

/* The entry of the current slot for a bucket's window key of an action, borrowed; NULL
 * without an error when there is none. Remembered until geo_forget: the key of a bucket and
 * the entry of a key in the slot only change in Python (a new action, a new slot). */
static PyObject *
slot_entry_of(Ctx *ctx, PyObject *bucket, PyObject *action, int a)
{
    size_t i = (((size_t)bucket >> 4) * N_ACTIONS + (size_t)a) % GEO_MEMO;
    if (ctx->geo_memo[i].bucket == bucket && ctx->geo_memo[i].action == a)
        return ctx->geo_memo[i].entry;
    PyObject *key = PyDict_GetItemWithError(bucket, action);
    PyObject *entry = key ? slot_entry(ctx, key) : NULL;
    if (entry != NULL) {
        Py_XSETREF(ctx->geo_memo[i].bucket, Py_NewRef(bucket));
        Py_XSETREF(ctx->geo_memo[i].entry, Py_NewRef(entry));
        ctx->geo_memo[i].action = a;
        ctx->geo_memo_used = 1;
    }
    return entry;
}

/*
 * GeoRecorder._slow_key for a private IPv4 host (its transfers per host, the first
 * MAX_PRIVATE_HOSTS hosts of a slot by name, the rest as "*"), then the entry. Behind
 * Docker's userland proxy every peer is 172.17.0.1, so all of a node's transfers come here.
 * Nothing changes before the entry is known to exist: else Python does it all.
 */
static int
record_private(Ctx *ctx, const CommonLine *c, PyObject *action, Py_ssize_t n)
{
    PyObject **key = &private_keys[c->action];
    if (*key == NULL) {
        PyObject *geohash = PyUnicode_FromString(""), *country = PyUnicode_FromString("private");
        *key = geohash && country ? PyTuple_Pack(3, action, geohash, country) : NULL;
        Py_XDECREF(geohash);
        Py_XDECREF(country);
        if (*key == NULL)
            return -1;
    }
    PyObject *entry = slot_entry(ctx, *key);
    if (entry == NULL)
        return PyErr_Occurred() ? -1 : 0;
    PyObject *host = PyUnicode_DecodeASCII(c->remote, n, NULL);
    if (host == NULL)
        return -1;
    PyObject *hosts = ctx->geo_cur_private;
    PyObject *count = PyDict_GetItemWithError(hosts, host);
    if (count == NULL && !PyErr_Occurred() && PyDict_GET_SIZE(hosts) >= MAX_PRIVATE_HOSTS) {
        Py_SETREF(host, Py_NewRef(private_rest));
        count = PyDict_GetItemWithError(hosts, host);
    }
    PyObject *one = PyErr_Occurred() ? NULL : PyLong_FromLong(1);
    PyObject *sum = one && count ? PyNumber_Add(count, one) : Py_XNewRef(one);
    int rc = sum ? PyDict_SetItem(hosts, host, sum) : -1;
    Py_XDECREF(one);
    Py_XDECREF(sum);
    Py_DECREF(host);
    return rc < 0 ? -1 : add_to_entry(ctx, entry, c->size);
}

/*
 * GeoRecorder.record(action, remote, size, now) when the time is inside the current slot,
 * the host's bucket is known here (see host_bucket, record_private) and the window key has an
 * entry in the current slot: add to that entry, as Python does. Returns 1 when done, 0 when
 * Python's record must do it (whatever was done here is what record() would have done
 * first), -1 on error.
 */
int
geo_record_fast(Ctx *ctx, const CommonLine *c, PyObject *action)
{
    double now = ctx->read_time_value;
    if (g_attr[0] == NULL && intern_names() < 0)
        return -1;
    if (!ctx->have_read_time && clock_now(ctx, &now) < 0) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError))
            return -1;
        PyErr_Clear(); /* not a GeoRecorder as this code knows it */
        return 0;
    }
    if (!ctx->have_geo) {
        int rc = geo_fetch(ctx);
        if (rc <= 0)
            return rc;
    }
    if (now >= ctx->geo_slot_end)
        return 0;
    /* host = remote_address.rpartition(":")[0] or remote_address */
    const char *colon = memrchr(c->remote, ':', (size_t)c->remote_len);
    Py_ssize_t n = colon != NULL && colon > c->remote ? colon - c->remote : c->remote_len;
    int private = 0;
    PyObject *bucket = host_bucket(ctx, c->remote, n, &private);
    if (private)
        return record_private(ctx, c, action, n);
    if (bucket == NULL || !PyDict_Check(bucket)) {
        Py_XDECREF(bucket);
        return PyErr_Occurred() ? -1 : 0;
    }
    PyObject *entry = slot_entry_of(ctx, bucket, action, c->action);
    Py_DECREF(bucket); /* the caches still hold it */
    if (entry == NULL)
        return PyErr_Occurred() ? -1 : 0;
    return add_to_entry(ctx, entry, c->size);
}
