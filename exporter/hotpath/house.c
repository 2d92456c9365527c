/*
 * Three housekeeping lines in C: `Moved pieces to trash during retain`, `emptying trash
 * finished` and `used-space-filewalker completed` (2,840 of the 3,344 lines the 1M-line v1.99
 * bench log left to Python, ~38k instructions each through parse_line + apply). For them
 * parser._other reads the fields with a JSON parse (housekeeping._fields, keys normalised),
 * the message's reader (housekeeping._retain_finished, _trash_finished, _used_space_completed)
 * gives updates and NodeState._house applies them: counters in NodeState.house (capped at
 * HOUSE_MAX), a Histogram(HOUSE_BUCKETS) per key in NodeState.house_hists.
 *
 * What is mirrored is that code; the numbers come from Python (set_house): the Histogram
 * class, HOUSE_BUCKETS, HOUSE_MAX, MAX_COUNT, MAX_SECONDS, UNKNOWN. The JSON read here is a
 * strict subset: an object of strings without a backslash, integers of up to 18 digits, true,
 * false and null. Anything else -- an escape, a float, a nested value, a count that is
 * negative or over MAX_COUNT or not an integer, a key read under two spellings that normalise
 * alike, a duration in another spelling than Go's (`2h3m4.5s`, `36m18.2s`, `245.1ms`), a
 * satellite NodeState._house would hand to _new_satellite, a state that does not look as
 * NodeState builds it -- returns 0 before anything is changed, and Python reads the line.
 * Non-ASCII and control characters never get here (events.c apply_event).
 *
 * The house dicts are written directly (these lines are rare; nothing of them is deferred),
 * in the order _house writes them. tests/test_hotpath_house.py holds this equal to Python.
 */
#include "hotpath.h"
#include <math.h>

enum { RETAIN, TRASH, USED_SPACE, N_KINDS };
static const struct {
    const char *text;
    Py_ssize_t len;
} MESSAGES[N_KINDS] = {
    {"Moved pieces to trash during retain", 35},
    {"emptying trash finished", 23},
    {"used-space-filewalker completed", 31},
};

/* the normalised keys the readers look up (housekeeping._retain_finished and the others) */
enum {
    K_SATELLITE_ID, K_SATELLITE, K_DELETED_PIECES, K_NUM_DELETED, K_FAILED_TO_DELETE,
    K_PIECES_FAILED_TO_READ, K_DURATION, K_ELAPSED, K_LAZY_FILE_WALKER, N_KEYS
};
static const char *KEYS[N_KEYS] = {
    "satellite_id", "satellite", "deleted_pieces", "num_deleted", "failed_to_delete",
    "pieces_failed_to_read", "duration", "elapsed", "lazy_file_walker",
};
#define MAX_KEY 24 /* longer than any of KEYS once normalised: such a key is none of them */

enum { ABSENT, V_STR, V_INT, V_NEG, V_TRUE, V_FALSE, V_NULL };
typedef struct {
    int kind;
    const char *s; /* V_STR: the text between the quotes */
    Py_ssize_t n;
    long long v;     /* V_INT, V_NEG: the digits' value (V_NEG: a negative number) */
    const char *key; /* the key as the line spells it */
    Py_ssize_t key_n;
} Value;

static PyObject *histogram_type, *house_buckets, *s_unknown;
static long long house_max, max_count;
static double max_seconds;
/* interned: the metrics of the updates (housekeeping.METRICS), label values, attributes */
enum { M_GC_RUNS, M_GC_TRASHED, M_GC_FAILED, M_GC_DURATION, M_TRASH_RUNS, M_TRASH_DURATION,
       M_WALKER_RUNS, M_WALKER_DURATION, S_TRUE, S_FALSE, S_USED_SPACE, A_HOUSE,
       A_HOUSE_HISTS, A_SATELLITES, A_SATELLITES_OF, N_STRINGS };
static const char *STRINGS[N_STRINGS] = {
    "gc_runs", "gc_pieces_trashed", "gc_pieces_failed", "gc_duration", "trash_empty_runs",
    "trash_empty_duration", "filewalker_runs", "filewalker_duration", "true", "false",
    "used_space", "house", "house_hists", "_satellites", "_satellites_of",
};
static PyObject *strs[N_STRINGS];
static int ready; /* set_house ran: without it these lines go to Python */

const char set_house_doc[] = PyDoc_STR(
    "set_house(histogram, buckets, house_max, max_count, max_seconds, unknown)\n--\n\n"
    "tallies.Histogram, housekeeping.HOUSE_BUCKETS, state.HOUSE_MAX, housekeeping.MAX_COUNT,\n"
    "housekeeping.MAX_SECONDS and housekeeping.UNKNOWN: the scan then applies the retain,\n"
    "trash-emptying and used-space-filewalker lines itself. Once: a second call changes\n"
    "nothing.");

PyObject *
set_house(PyObject *module, PyObject *args)
{
    PyObject *type, *buckets, *unknown;
    long long hmax, cmax, smax;
    if (!PyArg_ParseTuple(args, "OO!LLLU:set_house", &type, &PyTuple_Type, &buckets, &hmax,
                          &cmax, &smax, &unknown))
        return NULL;
    if (ready)
        Py_RETURN_NONE;
    /* the sums below stay far from overflow; MAX_SECONDS is exact as a double */
    if (hmax < 0 || hmax > (1LL << 61) || cmax < 0 || cmax > (1LL << 52) || smax < 0 ||
        smax > (1LL << 52) || !PyType_Check(type)) {
        PyErr_SetString(PyExc_ValueError, "set_house: implausible limits or no type");
        return NULL;
    }
    for (int i = 0; i < N_STRINGS; i++)
        if ((strs[i] = PyUnicode_InternFromString(STRINGS[i])) == NULL)
            return NULL;
    Py_INCREF(type);
    Py_INCREF(buckets);
    Py_INCREF(unknown);
    histogram_type = type;
    house_buckets = buckets;
    s_unknown = unknown;
    house_max = hmax;
    max_count = cmax;
    max_seconds = (double)smax;
    ready = 1;
    Py_RETURN_NONE;
}

/* ---- the fields (housekeeping._fields) ------------------------------------------------- */

static const char *
spaces(const char *p, const char *end)
{
    while (p < end && *p == ' ') /* the only JSON whitespace a line here can hold */
        p++;
    return p;
}

/* A string without escapes, p at its opening quote: past its closing quote, NULL to bail. */
static const char *
string(const char *p, const char *end, const char **s, Py_ssize_t *n)
{
    const char *q = memchr(p + 1, '"', (size_t)(end - p - 1));
    if (q == NULL || memchr(p + 1, '\\', (size_t)(q - p - 1)) != NULL)
        return NULL;
    *s = p + 1;
    *n = q - p - 1;
    return q + 1;
}

static const char *
value(const char *p, const char *end, Value *v)
{
    if (*p == '"') {
        v->kind = V_STR;
        return string(p, end, &v->s, &v->n);
    }
    static const struct {
        const char *text;
        int len, kind;
    } words[] = {{"true", 4, V_TRUE}, {"false", 5, V_FALSE}, {"null", 4, V_NULL}};
    for (int i = 0; i < 3; i++)
        if (end - p >= words[i].len && memcmp(p, words[i].text, (size_t)words[i].len) == 0) {
            v->kind = words[i].kind;
            return p + words[i].len;
        }
    int neg = *p == '-';
    const char *d = p + neg, *q = d;
    long long n = 0;
    while (q < end && is_digit(*q) && q - d < 18)
        n = n * 10 + (*q++ - '0');
    /* no digit (-Infinity, NaN, [..., {...), a leading zero (JSON has none: json.loads
     * fails), more digits (json.loads may refuse them: int_max_str_digits), a float */
    if (q == d || (*d == '0' && q - d > 1) ||
        (q < end && (is_digit(*q) || *q == '.' || *q == 'e' || *q == 'E')))
        return NULL;
    v->kind = neg ? V_NEG : V_INT;
    v->v = n;
    return q;
}

/* housekeeping.normalise_key into out: its length, or -1 when longer than MAX_KEY */
static Py_ssize_t
normalise(const char *k, Py_ssize_t n, char *out)
{
    Py_ssize_t o = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        char c = k[i] == ' ' ? '_' : k[i];
        if (c >= 'A' && c <= 'Z') {
            char before = i > 0 ? k[i - 1] : '_'; /* _CAMEL: (?<=[a-z0-9])([A-Z]) */
            if ((before >= 'a' && before <= 'z') || is_digit(before)) {
                if (o == MAX_KEY)
                    return -1;
                out[o++] = '_';
            }
            c = (char)(c - 'A' + 'a');
        }
        if (o == MAX_KEY)
            return -1;
        out[o++] = c;
    }
    return o;
}

/*
 * The fields object into f (by KEYS): 1, or 0 to bail. As `dict(zip(_keys(raw), ...))`,
 * the last of the keys that normalise alike wins -- in the order of the keys' first
 * appearance, which is the line's unless one key comes back after another spelling of
 * it: that (`"Satellite ID", "satellite_id", "Satellite ID"`) is left to Python.
 */
static int
read_fields(const char *p, const char *end, Value f[N_KEYS])
{
    for (int k = 0; k < N_KEYS; k++)
        f[k].kind = ABSENT;
    p = spaces(p + 1, end); /* past `{` */
    if (p < end && *p == '}')
        return p + 1 == end;
    for (;;) {
        const char *key;
        Py_ssize_t key_n;
        Value v;
        if (p == end || *p != '"' || (p = string(p, end, &key, &key_n)) == NULL)
            return 0;
        p = spaces(p, end);
        if (p == end || *p != ':')
            return 0;
        p = spaces(p + 1, end);
        if (p == end || (p = value(p, end, &v)) == NULL)
            return 0;
        char name[MAX_KEY];
        Py_ssize_t name_n = normalise(key, key_n, name);
        for (int k = 0; k < N_KEYS && name_n > 0; k++) {
            if ((Py_ssize_t)strlen(KEYS[k]) != name_n || memcmp(KEYS[k], name, (size_t)name_n))
                continue;
            if (f[k].kind != ABSENT &&
                (f[k].key_n != key_n || memcmp(f[k].key, key, (size_t)key_n) != 0))
                return 0;
            v.key = key;
            v.key_n = key_n;
            f[k] = v;
            break;
        }
        p = spaces(p, end);
        if (p == end)
            return 0;
        if (*p == '}')
            return p + 1 == end;
        if (*p != ',')
            return 0;
        p = spaces(p + 1, end);
    }
}

/* ---- the readers ----------------------------------------------------------------------- */

/* float(text) of ASCII digits (and a point): Python's own conversion */
static double
number(const char *s, Py_ssize_t n)
{
    char buf[48];
    memcpy(buf, s, (size_t)n);
    buf[n] = 0;
    return PyOS_string_to_double(buf, NULL, NULL); /* the parts are checked: no error */
}

static const char *
digits(const char *p, const char *end)
{
    while (p < end && is_digit(*p))
        p++;
    return p;
}

/*
 * housekeeping.duration_seconds of a string: 1 with *has (0: None) and *out, 0 to bail. Two
 * spellings: _GO_DURATION (`(?:(\d+)h)?(?:(\d+)m)?(\d+(?:\.\d+)?)s`), summed in its order,
 * and one `<number>ms|us|ns` part (Go's spelling under a second), as _duration_parts sums it.
 */
static int
duration(const Value *v, int *has, double *out)
{
    *has = 0;
    if (v->kind == ABSENT)
        return 1;
    if (v->kind != V_STR || v->n == 0 || v->n > 40) /* None, or Python decides */
        return 0;
    const char *p = v->s, *end = v->s + v->n, *d = digits(p, end);
    const char *hours = NULL, *minutes = NULL, *hours_end = NULL, *minutes_end = NULL;
    double total = 0.0;
    if (d == p)
        return 0;
    if (d < end && *d == 'h') {
        hours = p;
        hours_end = d;
        p = d + 1;
        d = digits(p, end);
    }
    if (d > p && d + 1 < end && *d == 'm' && d[1] != 's') {
        minutes = p;
        minutes_end = d;
        p = d + 1;
        d = digits(p, end);
    }
    if (d == p)
        return 0;
    if (d < end && *d == '.') {
        const char *frac = d + 1;
        d = digits(frac, end);
        if (d == frac)
            return 0;
    }
    if (d + 1 == end && *d == 's') {
        if (hours != NULL)
            total += number(hours, hours_end - hours) * 3600.0;
        if (minutes != NULL)
            total += number(minutes, minutes_end - minutes) * 60.0;
        total += number(p, d - p) * 1.0;
    }
    else if (hours == NULL && minutes == NULL && d + 2 == end && d[1] == 's' &&
             (*d == 'm' || *d == 'u' || *d == 'n'))
        total += number(p, d - p) * (*d == 'm' ? 1e-3 : *d == 'u' ? 1e-6 : 1e-9);
    else
        return 0;
    if (!isfinite(total) || total > max_seconds)
        return 1; /* None */
    *has = 1;
    *out = total;
    return 1;
}

/* housekeeping._count where it gives a number: 1 and *out (0 when absent), 0 to bail */
static int
count(const Value *v, long long *out)
{
    *out = 0;
    if (v->kind == ABSENT)
        return 1;
    if (v->kind != V_INT || v->v > max_count)
        return 0;
    *out = v->v;
    return 1;
}

/* ---- NodeState._house ------------------------------------------------------------------ */

typedef struct {
    PyObject *key; /* (metric, *labels), a strong reference */
    int hist;      /* "h" (a histogram), else "c" */
    long long add; /* "c": the sum to be, min(old + value, HOUSE_MAX) */
    double value;  /* "h" */
    PyObject *h, *counts, *sum; /* "h": the Histogram (strong: new, or borrowed), counts */
    int created;
    Py_ssize_t bucket;
} Update;

/* The Histogram `h` as NodeState builds it (HOUSE_BUCKETS of ints or floats, int counts, a
 * float sum): 1 and u->bucket, u->counts, u->sum for `observe(u->value)`, 0 otherwise. */
static int
readable_hist(Update *u, PyObject *h)
{
    if (Py_TYPE(h) != (PyTypeObject *)histogram_type)
        return 0;
    PyObject *bounds = PyObject_GetAttr(h, a_bounds), *counts = NULL, *sum = NULL;
    int ok = 0;
    if (bounds == NULL || (counts = PyObject_GetAttr(h, a_counts)) == NULL ||
        (sum = PyObject_GetAttr(h, a_sum)) == NULL)
        goto done;
    if (!PyTuple_CheckExact(bounds) || !PyList_CheckExact(counts) || !PyFloat_CheckExact(sum) ||
        PyList_GET_SIZE(counts) != PyTuple_GET_SIZE(bounds) + 1)
        goto done;
    /* bisect_left(bounds, value), CPython's loop: a bound is an int or float as exact as a
     * double (HOUSE_BUCKETS' are) */
    Py_ssize_t lo = 0, hi = PyTuple_GET_SIZE(bounds);
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        PyObject *b = PyTuple_GET_ITEM(bounds, mid);
        double bound;
        if (PyFloat_CheckExact(b))
            bound = PyFloat_AS_DOUBLE(b);
        else if (PyLong_CheckExact(b)) {
            int overflow;
            long long i = PyLong_AsLongLongAndOverflow(b, &overflow);
            if (overflow || i > (1LL << 53) || i < -(1LL << 53))
                goto done;
            bound = (double)i;
        }
        else
            goto done;
        if (bound < u->value)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (!PyLong_CheckExact(PyList_GET_ITEM(counts, lo)))
        goto done;
    u->bucket = lo;
    u->counts = counts;
    u->sum = sum;
    counts = sum = NULL;
    ok = 1;
done:
    Py_XDECREF(bounds);
    Py_XDECREF(counts);
    Py_XDECREF(sum);
    return PyErr_Occurred() ? -1 : ok;
}

/*
 * Check every update against the state first (1 when all can be applied, 0 to leave the
 * line to Python, -1 on error), then apply them, in order: nothing changes unless all do.
 */
static int
house_apply(Ctx *ctx, Update *u, int n)
{
    PyObject *house = PyObject_GetAttr(ctx->state, strs[A_HOUSE]);
    PyObject *hists = house ? PyObject_GetAttr(ctx->state, strs[A_HOUSE_HISTS]) : NULL;
    int rc = -1;
    if (hists == NULL)
        goto done;
    rc = 0;
    if (!PyDict_CheckExact(house) || !PyDict_CheckExact(hists))
        goto done;
    for (int i = 0; i < n; i++) {
        if (!u[i].hist) {
            PyObject *old = PyDict_GetItemWithError(house, u[i].key);
            long long was = 0;
            if (old == NULL && PyErr_Occurred())
                goto fail;
            if (old != NULL) {
                int overflow;
                was = PyLong_CheckExact(old) ? PyLong_AsLongLongAndOverflow(old, &overflow) : -1;
                if (was == -1 && PyErr_Occurred())
                    goto fail;
                if (!PyLong_CheckExact(old) || overflow || was < 0 || was > house_max)
                    goto done;
            }
            u[i].add = was + u[i].add < house_max ? was + u[i].add : house_max;
            continue;
        }
        PyObject *h = PyDict_GetItemWithError(hists, u[i].key);
        if (h == NULL && PyErr_Occurred())
            goto fail;
        if (h == NULL) { /* Histogram(HOUSE_BUCKETS): Python code, but none of the state's */
            if ((h = PyObject_CallOneArg(histogram_type, house_buckets)) == NULL)
                goto fail;
            u[i].created = 1;
        }
        u[i].h = h;
        int ok = readable_hist(&u[i], h);
        if (ok < 0)
            goto fail;
        if (!ok)
            goto done;
    }
    rc = 1;
    for (int i = 0; i < n && rc == 1; i++) {
        if (!u[i].hist) {
            PyObject *v = PyLong_FromLongLong(u[i].add);
            if (v == NULL || PyDict_SetItem(house, u[i].key, v) < 0)
                rc = -1;
            Py_XDECREF(v);
            continue;
        }
        if (u[i].created && PyDict_SetItem(hists, u[i].key, u[i].h) < 0) {
            rc = -1;
            break;
        }
        PyObject *one = PyLong_FromLong(1);
        PyObject *c = one ? PyNumber_Add(PyList_GET_ITEM(u[i].counts, u[i].bucket), one) : NULL;
        PyObject *s = c ? PyFloat_FromDouble(PyFloat_AS_DOUBLE(u[i].sum) + u[i].value) : NULL;
        Py_XDECREF(one);
        if (s == NULL || PyList_SetItem(u[i].counts, u[i].bucket, c) < 0 ||
            PyObject_SetAttr(u[i].h, a_sum, s) < 0)
            rc = -1;
        if (s == NULL)
            Py_XDECREF(c);
        Py_XDECREF(s);
    }
    goto done;
fail:
    rc = -1;
done:
    for (int i = 0; i < n; i++) {
        if (u[i].created)
            Py_DECREF(u[i].h);
        Py_XDECREF(u[i].counts);
        Py_XDECREF(u[i].sum);
    }
    Py_XDECREF(house);
    Py_XDECREF(hists);
    return rc;
}

/* an update: a counter's `add` (value < 0), or a histogram's `value` */
static void
push(Update *u, int *n, PyObject *key, long long add, double value)
{
    u[*n].key = key;
    u[*n].add = add;
    u[*n].hist = value >= 0;
    u[*n].value = value;
    ++*n;
}

/* NodeState._house's test: may the satellite's updates go in without _new_satellite? */
static int
satellite_known(Ctx *ctx, PyObject *sat)
{
    if (PyUnicode_Compare(sat, s_unknown) == 0)
        return 1;
    PyObject *known = PyObject_GetAttr(ctx->state, strs[A_SATELLITES]);
    PyObject *of = known ? PyObject_GetAttr(ctx->state, strs[A_SATELLITES_OF]) : NULL;
    PyObject *transfers = of ? PyObject_GetAttr(ctx->state, a_transfers) : NULL;
    int rc = -1;
    if (transfers != NULL)
        rc = of == transfers && PyAnySet_CheckExact(known) ? PySet_Contains(known, sat) : 0;
    Py_XDECREF(known);
    Py_XDECREF(of);
    Py_XDECREF(transfers);
    return rc;
}

/* housekeeping._satellite: the ID (1, *sat new), 0 to bail */
static int
satellite(const Value f[N_KEYS], PyObject **sat)
{
    const Value *v = f[K_SATELLITE_ID].kind != ABSENT ? &f[K_SATELLITE_ID] : &f[K_SATELLITE];
    if (v->kind == ABSENT) {
        Py_INCREF(s_unknown);
        *sat = s_unknown;
        return 1;
    }
    if (v->kind != V_STR) /* UNKNOWN in Python; rare enough to leave to it */
        return 0;
    *sat = PyUnicode_DecodeASCII(v->s, v->n, NULL);
    return *sat == NULL ? -1 : 1;
}

/*
 * One of the three lines, its fields from `{` to the end: 1 when applied to the house
 * dicts (the caller counts the line and its event), 0 when Python is to read it (nothing
 * changed), -1 on error.
 */
int
apply_house(Ctx *ctx, const char *logger, Py_ssize_t logger_len, const char *message,
            Py_ssize_t message_len, const char *fields, const char *end)
{
    int kind = 0;
    while (kind < N_KINDS && (MESSAGES[kind].len != message_len ||
                              memcmp(MESSAGES[kind].text, message, (size_t)message_len)))
        kind++;
    Value f[N_KEYS];
    if (!ready || kind == N_KINDS || !read_fields(fields, end, f))
        return 0;
    Update u[4];
    memset(u, 0, sizeof(u));
    int n = 0, rc, has_took;
    double took;
    PyObject *sat = NULL;
    if (kind == USED_SPACE) { /* _used_space_completed, _lazy */
        int flag = f[K_LAZY_FILE_WALKER].kind;
        PyObject *lazy = flag == V_TRUE ? strs[S_TRUE] : flag == V_FALSE ? strs[S_FALSE]
                                                                          : s_unknown;
        if (logger_len >= 14 && memcmp(logger, "lazyfilewalker", 14) == 0)
            lazy = strs[S_TRUE];
        if (!duration(&f[K_DURATION], &has_took, &took))
            return 0;
        push(u, &n, PyTuple_Pack(3, strs[M_WALKER_RUNS], strs[S_USED_SPACE], lazy), 1, -1);
        if (has_took)
            push(u, &n, PyTuple_Pack(3, strs[M_WALKER_DURATION], strs[S_USED_SPACE], lazy),
                 0, took);
    }
    else if (kind == TRASH) { /* _trash_finished */
        if (!duration(&f[K_ELAPSED], &has_took, &took))
            return 0;
        if ((rc = satellite(f, &sat)) <= 0)
            return rc;
        push(u, &n, PyTuple_Pack(2, strs[M_TRASH_RUNS], sat), 1, -1);
        if (has_took)
            push(u, &n, PyTuple_Pack(1, strs[M_TRASH_DURATION]), 0, took);
    }
    else { /* _retain_finished */
        long long deleted, failed, unread;
        const Value *trashed = f[K_DELETED_PIECES].kind != ABSENT ? &f[K_DELETED_PIECES]
                                                                   : &f[K_NUM_DELETED];
        if (!count(trashed, &deleted) || !count(&f[K_FAILED_TO_DELETE], &failed) ||
            !count(&f[K_PIECES_FAILED_TO_READ], &unread) ||
            !duration(&f[K_DURATION], &has_took, &took))
            return 0;
        if ((rc = satellite(f, &sat)) <= 0)
            return rc;
        push(u, &n, PyTuple_Pack(2, strs[M_GC_RUNS], sat), 1, -1);
        if (deleted)
            push(u, &n, PyTuple_Pack(2, strs[M_GC_TRASHED], sat), deleted, -1);
        if (failed + unread)
            push(u, &n, PyTuple_Pack(2, strs[M_GC_FAILED], sat), failed + unread, -1);
        if (has_took)
            push(u, &n, PyTuple_Pack(2, strs[M_GC_DURATION], sat), 0, took);
    }
    rc = 1;
    for (int i = 0; i < n; i++)
        if (u[i].key == NULL)
            rc = -1;
    if (rc == 1 && sat != NULL)
        rc = satellite_known(ctx, sat);
    if (rc == 1)
        rc = house_apply(ctx, u, n);
    for (int i = 0; i < n; i++)
        Py_XDECREF(u[i].key);
    Py_XDECREF(sat);
    return rc;
}
