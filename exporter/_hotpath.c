/*
 * exporter._hotpath: the common log lines of a batch, applied to a NodeState in C.
 *
 * Why: in CPython the per-line work for a successful transfer or a "... started" line costs
 * 3-4 us even after one regex finds it, which caps `report` at ~140k lines/s. This module
 * does the same work without the interpreter: it walks a bytes block line by line, reads
 * the lines that parser.COMMON_LINE_RE describes (the same grammar, ASCII only) plus the
 * `... canceled` lines of the same shape (no "reason" field; not the race-lost ones, which
 * NodeState pairs with their DEBUG line in Python), and updates the NodeState's
 * plain dicts and Histograms exactly as NodeState._feed_text and NodeState.apply do.
 * Every other line -- and any common-looking line it is not sure about -- goes to
 * NodeState._line, in order, so the Python parser stays the one reference.
 * tests/test_hotpath.py checks that all paths leave identical state.
 *
 * Rare branches call back into NodeState (_sweep, _evict_oldest, _new_satellite,
 * _durations_for, TopPieces.add, the timestamp cache, geo.record), so there is one
 * implementation of each of them.
 *
 * Hostile lines (issue 12): a size over parser.MAX_PIECE_SIZE or a piece ID or remote
 * address over parser.MAX_FIELD goes to Python, and the label of a satellite seen for the
 * first time is the one NodeState._new_satellite returns (the ID, "invalid" or "overflow").
 *
 * Issue 13: a line behind a `docker logs -t`, compose, TrueNAS or journald prefix is read
 * here too (prefix_len mirrors exporter/prefixes.py; it runs only for lines that are not
 * common lines, so the unprefixed line pays nothing); a timestamp has no space; the
 * `Available Space` of an `upload started` line becomes NodeState.available_space; once a
 * log has shown a race-lost line with the piece ID alone (NodeState.index_starts),
 * the `... started` lines go to Python, which indexes them by piece.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* parser.MAX_PIECE_SIZE and parser.MAX_FIELD (tests/test_poison.py holds them equal) */
#define MAX_PIECE_SIZE (64LL << 20)
#define MAX_FIELD 128

#define N_ACTIONS 5
static const char *ACTION_NAMES[N_ACTIONS] = {"GET", "GET_AUDIT", "GET_REPAIR", "PUT",
                                              "PUT_REPAIR"};
#define N_DOWNLOADS 3 /* GET, GET_AUDIT, GET_REPAIR come first */
/* the results of the finished lines read here (failures carry an error: Python reads them) */
#define N_RESULTS 2
static const char *RESULT_NAMES[N_RESULTS] = {"success", "canceled"};
#define CELLS (N_RESULTS * N_ACTIONS) /* index: result * N_ACTIONS + action */

/* interned strings: dict keys and attribute names */
static PyObject *s_action[N_ACTIONS], *s_result[N_RESULTS], *s_info, *s_debug;
static PyObject *s_duration_key[CELLS]; /* (action, result) */
static PyObject *a_lines, *a_transfers, *a_bytes, *a_sizes, *a_durations, *a_in_flight,
    *a_requested, *a_pending, *a_top_pieces, *a_counts, *a_capacity, *a_add, *a_geo, *a_record,
    *a_max_pending, *a_newest, *a_next_sweep, *a_starts_expired, *a_clock, *a_last_timestamp,
    *a_sweep, *a_evict_oldest, *a_new_satellite, *a_line, *a_bounds, *a_sum, *a_durations_for,
    *a_read_time_slack, *a_geo_slot_end, *a_available_space, *a_index_starts;

/* ---- the grammar of a common line (parser.COMMON_LINE_RE) ------------------------------ */

typedef struct {
    const char *ts, *piece, *sat, *remote;
    Py_ssize_t ts_len, piece_len, sat_len, remote_len;
    int info;    /* INFO, else DEBUG */
    int started; /* "... started", else a finished transfer with this result: */
    int result;  /* index into RESULT_NAMES */
    int action;  /* index into ACTION_NAMES */
    int has_size;
    long long size;
    int has_avail; /* an `Available Space` the gauge may take (parser.available_space) */
    long long avail;
} CommonLine;

static inline __attribute__((always_inline)) int
lit(const char **pp, const char *end, const char *s, Py_ssize_t n)
{
    if (end - *pp < n || memcmp(*pp, s, (size_t)n) != 0)
        return 0;
    *pp += n;
    return 1;
}
#define LIT(p, end, s) lit(&(p), (end), (s), (Py_ssize_t)sizeof(s) - 1)
/* one of two spellings of a key: Title Case before v1.146, snake_case after */
#define KEY(p, end, a, b) (LIT(p, end, a) || LIT(p, end, b))

/* [^"\t]* then the closing quote (a tab would make it a line of other columns for
 * parse_line); ASCII only so that the bytes are the text */
static unsigned char QUOTED_STOP[256]; /* '"', '\t' and every byte >= 0x80 */

static inline int
quoted(const char **pp, const char *end, const char **value, Py_ssize_t *len)
{
    const char *p = *pp;
    while (p < end && !QUOTED_STOP[(unsigned char)*p])
        p++;
    if (p >= end || *p != '"')
        return 0;
    *value = *pp;
    *len = p - *pp;
    *pp = p + 1;
    return 1;
}

/* -?\d+ ; the value is kept only when it fits (18 digits), otherwise *ok = 0 */
static inline int
number(const char **pp, const char *end, int minus, long long *value, int *fits)
{
    const char *p = *pp;
    if (minus && p < end && *p == '-')
        p++;
    const char *digits = p;
    long long v = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        if (p - digits < 18)
            v = v * 10 + (*p - '0');
        p++;
    }
    if (p == digits)
        return 0;
    if (value != NULL) {
        *value = v;
        *fits = (p - digits) <= 18;
    }
    *pp = p;
    return 1;
}

static inline int
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* always inlined: the scan loop calls it twice (the second time behind a prefix) */
static inline __attribute__((always_inline)) int
parse_common(const char *p, const char *end, CommonLine *c)
{
    /* \d{4}-\d\d-\d\dT[^\t]+\t */
    if (end - p < 12 || !is_digit(p[0]) || !is_digit(p[1]) || !is_digit(p[2]) || !is_digit(p[3]) ||
        p[4] != '-' || !is_digit(p[5]) || !is_digit(p[6]) || p[7] != '-' || !is_digit(p[8]) ||
        !is_digit(p[9]) || p[10] != 'T')
        return 0;
    c->ts = p;
    p += 11;
    const char *tab = p;
    while (tab < end && *tab != '\t') {
        if ((unsigned char)*tab >= 0x80 || *tab == ' ')
            return 0;
        tab++;
    }
    if (tab == p || tab >= end)
        return 0;
    c->ts_len = tab - c->ts;
    p = tab + 1;

    if (LIT(p, end, "INFO\t"))
        c->info = 1;
    else if (LIT(p, end, "DEBUG\t"))
        c->info = 0;
    else
        return 0;
    /* `piecestore:endpoint`: the modular node (v1.120+, storagenode/mud.go) */
    if (!LIT(p, end, "piecestore") || (!LIT(p, end, "\t") && !LIT(p, end, ":endpoint\t")))
        return 0;
    c->started = c->result = 0;
    if (LIT(p, end, "uploaded\t") || LIT(p, end, "downloaded\t"))
        ;
    else if (LIT(p, end, "upload started\t") || LIT(p, end, "download started\t"))
        c->started = 1;
    else if ((LIT(p, end, "upload canceled") || LIT(p, end, "download canceled")) &&
             LIT(p, end, "\t"))
        c->result = 1; /* only without a "reason" field: the shape below has none */
    else
        return 0;

    if (!LIT(p, end, "{"))
        return 0;
    (void)KEY(p, end, "\"Process\": \"storagenode\", ", "\"process\": \"storagenode\", ");
    if (!KEY(p, end, "\"Piece ID\": \"", "\"piece_id\": \"") ||
        !quoted(&p, end, &c->piece, &c->piece_len) || !LIT(p, end, ", "))
        return 0;
    if (!KEY(p, end, "\"Satellite ID\": \"", "\"satellite_id\": \"") ||
        !quoted(&p, end, &c->sat, &c->sat_len) || !LIT(p, end, ", "))
        return 0;
    const char *action;
    Py_ssize_t action_len;
    if (!KEY(p, end, "\"Action\": \"", "\"action\": \"") ||
        !quoted(&p, end, &action, &action_len) || !LIT(p, end, ", "))
        return 0;
    c->action = -1;
    for (int i = 0; i < N_ACTIONS; i++) {
        if ((Py_ssize_t)strlen(ACTION_NAMES[i]) == action_len &&
            memcmp(action, ACTION_NAMES[i], (size_t)action_len) == 0) {
            c->action = i;
            break;
        }
    }
    if (c->action < 0)
        return 0;

    int fits = 1;
    c->has_size = c->has_avail = 0;
    if (KEY(p, end, "\"Offset\": ", "\"offset\": ")) {
        /* downloads: Offset, Size, Remote Address */
        if (!number(&p, end, 1, NULL, NULL) || !LIT(p, end, ", ") ||
            !KEY(p, end, "\"Size\": ", "\"size\": ") ||
            !number(&p, end, 0, &c->size, &fits) || !LIT(p, end, ", ") ||
            !KEY(p, end, "\"Remote Address\": \"", "\"remote_address\": \"") ||
            !quoted(&p, end, &c->remote, &c->remote_len))
            return 0;
        c->has_size = 1;
    }
    else if (KEY(p, end, "\"Remote Address\": \"", "\"remote_address\": \"")) {
        /* uploads since v1.99: Remote Address, then Size or (started) Available Space */
        if (!quoted(&p, end, &c->remote, &c->remote_len) || !LIT(p, end, ", "))
            return 0;
        if (KEY(p, end, "\"Size\": ", "\"size\": ")) {
            if (!number(&p, end, 0, &c->size, &fits))
                return 0;
            c->has_size = 1;
        }
        else {
            int avail_fits = 0;
            if (!KEY(p, end, "\"Available Space\": ", "\"available_space\": "))
                return 0;
            int negative = p < end && *p == '-';
            if (!number(&p, end, 1, &c->avail, &avail_fits))
                return 0;
            c->has_avail = avail_fits && !negative;
        }
    }
    else
        return 0;
    if (!fits || (!c->has_size && !c->started) || (c->has_size && c->size > MAX_PIECE_SIZE) ||
        c->piece_len > MAX_FIELD || c->remote_len > MAX_FIELD)
        return 0; /* leave odd sizes and fields to the Python parser */
    return end - p == 1 && *p == '}';
}

/* ---- prefixes (exporter/prefixes.py PATTERN, the same grammar) -------------------------- */
/*
 * A line that is not a common line may be one behind a `docker logs -t`, compose, TrueNAS or
 * journald prefix. prefix_len mirrors prefixes.PATTERN alternative by alternative, with its
 * look-ahead, and says how long the prefix Python would strip is; where this code is not
 * sure (colour codes, a fraction of more than 9 digits) it answers -1 and the line goes to
 * Python. Only lines that fail the common grammar get here: the unprefixed line pays nothing.
 */
static inline int
digits_at(const char *p, const char *end, Py_ssize_t n)
{
    if (end - p < n)
        return 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if (!is_digit(p[i]))
            return 0;
    return 1;
}

/* \d{4}-\d\d-\d\d then `sep`, \d\d:\d\d:\d\d ; NULL if not */
static const char *
date_time(const char *p, const char *end, char sep)
{
    if (end - p < 19 || !digits_at(p, end, 4) || p[4] != '-' || !digits_at(p + 5, end, 2) ||
        p[7] != '-' || !digits_at(p + 8, end, 2) || p[10] != sep || !digits_at(p + 11, end, 2) ||
        p[13] != ':' || !digits_at(p + 14, end, 2) || p[16] != ':' || !digits_at(p + 17, end, 2))
        return NULL;
    return p + 19;
}

/* (?:\.\d{1,9})? ; *unsure when the regex would backtrack into it */
static const char *
fraction(const char *p, const char *end, int *unsure)
{
    if (p >= end || *p != '.')
        return p;
    const char *q = p + 1;
    while (q < end && is_digit(*q))
        q++;
    if (q - p - 1 > 9 || q == p + 1)
        *unsure = 1;
    return q;
}

/* Z|[+-]\d\d:\d\d (colon optional when `loose`); NULL if none */
static const char *
zone(const char *p, const char *end, int loose)
{
    if (p < end && *p == 'Z')
        return p + 1;
    if (end - p < 5 || (*p != '+' && *p != '-') || !digits_at(p + 1, end, 2))
        return NULL;
    if (p[3] == ':' && digits_at(p + 4, end, 2))
        return p + 6;
    if (loose && digits_at(p + 3, end, 2))
        return p + 5;
    return NULL;
}

static inline int
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* prefixes._LINE_START: what a storagenode line starts with */
static int
line_start(const char *p, const char *end)
{
    if (end - p >= 11 && digits_at(p, end, 4) && p[4] == '-' && digits_at(p + 5, end, 2) &&
        p[7] == '-' && digits_at(p + 8, end, 2) && p[10] == 'T') {
        const char *q = p + 11;
        while (q < end && q - (p + 11) < 40 && !is_space(*q))
            q++;
        if (q == p + 11 || q >= end)
            return 0;
        return *q == '\t' || (*q == ' ' && q + 1 < end && q[1] == ' ');
    }
    static const char *levels[] = {"DEBUG", "INFO", "WARN", "ERROR", "DPANIC", "PANIC", "FATAL"};
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        Py_ssize_t n = (Py_ssize_t)strlen(levels[i]);
        if (end - p > n && memcmp(p, levels[i], (size_t)n) == 0)
            return p[n] == '\t' || (p[n] == ' ' && end - p > n + 1 && p[n + 1] == ' ');
    }
    return end - p >= 2 && p[0] == '{' && p[1] == '"';
}

/* _DOCKER_T at p: the position after it, NULL if none, *unsure as in fraction */
static const char *
docker_t(const char *p, const char *end, int *unsure)
{
    const char *q = date_time(p, end, 'T');
    if (q == NULL)
        return NULL;
    q = fraction(q, end, unsure);
    q = *unsure ? NULL : zone(q, end, 0);
    return q != NULL && q < end && *q == ' ' ? q + 1 : NULL;
}

static inline int
name_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) || c == '_' ||
           c == '.' || c == '-';
}

/* The length of the prefix prefixes.PATTERN matches at p, 0 for none, -1 for "ask Python". */
static Py_ssize_t
prefix_len(const char *p, const char *end)
{
    int unsure = 0;
    const char *q;
    if (p < end && *p == '\x1b')
        return -1;
    /* _COMPOSE (?:_DOCKER_T)? */
    if (p < end && name_char(*p) && *p != '_' && *p != '.' && *p != '-') {
        q = p + 1;
        while (q < end && name_char(*q) && q - p < 128)
            q++;
        if (q < end && name_char(*q))
            q = NULL; /* a longer name: the regex finds no `|` after 128 characters */
        while (q != NULL && q < end && *q == ' ')
            q++;
        if (q != NULL && q < end && *q == '\x1b')
            return -1;
        if (q != NULL && end - q >= 2 && q[0] == '|' && q[1] == '\x1b')
            return -1;
        if (q != NULL && end - q >= 2 && q[0] == '|' && q[1] == ' ') {
            q += 2;
            const char *t = docker_t(q, end, &unsure);
            if (unsure)
                return -1;
            if (t != NULL && line_start(t, end))
                return t - p;
            if (line_start(q, end))
                return q - p;
        }
    }
    /* _DOCKER_T */
    q = docker_t(p, end, &unsure);
    if (unsure)
        return -1;
    if (q != NULL && line_start(q, end))
        return q - p;
    /* _TRUENAS: (?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)? glued to the line */
    q = date_time(p, end, ' ');
    if (q != NULL) {
        q = fraction(q, end, &unsure);
        if (unsure)
            return -1;
        const char *z = zone(q, end, 0);
        if (z != NULL && line_start(z, end))
            return z - p;
        if (line_start(q, end))
            return q - p;
        return -1; /* the regex could backtrack into the fraction */
    }
    /* _SYSLOG */
    if (end - p >= 15 && *p >= 'A' && *p <= 'Z' && p[1] >= 'a' && p[1] <= 'z' && p[2] >= 'a' &&
        p[2] <= 'z' && p[3] == ' ' && (p[4] == ' ' || is_digit(p[4])) && is_digit(p[5]) &&
        p[6] == ' ' && digits_at(p + 7, end, 2) && p[9] == ':' && digits_at(p + 10, end, 2) &&
        p[12] == ':' && digits_at(p + 13, end, 2))
        q = p + 15;
    else if ((q = date_time(p, end, 'T')) != NULL) {
        q = fraction(q, end, &unsure);
        if (unsure)
            return -1;
        const char *z = zone(q, end, 1);
        if (z != NULL)
            q = z;
    }
    if (q == NULL || q >= end || *q != ' ')
        return 0;
    const char *host = ++q;
    while (q < end && name_char(*q))
        q++;
    if (q == host || q - host > 255 || q >= end || *q != ' ')
        return q - host > 255 ? -1 : 0;
    const char *prog = ++q;
    while (q < end && (name_char(*q) || *q == '/'))
        q++;
    if (q == prog || q - prog > 128)
        return q - prog > 128 ? -1 : 0;
    if (q < end && *q == '[') {
        const char *pid = ++q;
        while (q < end && is_digit(*q))
            q++;
        if (q == pid || q - pid > 10 || q >= end || *q != ']')
            return -1;
        q++;
    }
    if (end - q < 2 || q[0] != ':' || q[1] != ' ')
        return 0;
    q += 2;
    return line_start(q, end) ? q - p : 0;
}

/* A common line behind a prefix? Out of line, so that the scan loop stays as small as it was
 * for the unprefixed line. */
static __attribute__((noinline)) int
parse_behind_prefix(const char *line, const char *end, CommonLine *c)
{
    Py_ssize_t skip = prefix_len(line, end);
    return skip > 0 && parse_common(line + skip, end, c);
}

/* ---- applying a line ------------------------------------------------------------------- */
/*
 * Counters are added up in C while common lines follow each other and written back to the
 * NodeState by flush() before any Python code runs (the parser for another line, a sweep of
 * the pairing table, ...) and at the end of the block. Python therefore always sees the
 * state it would have built itself; the scrape cannot look in between, since the caller
 * holds NodeState.lock for the whole batch.
 */

#define MAX_BOUNDS 32
#define HIST_CACHE 24
typedef struct {
    PyObject *hist, *counts; /* strong references; counts is hist.counts */
    Py_ssize_t n;            /* len(hist.bounds) */
    double bounds[MAX_BOUNDS];
    double sum; /* hist.sum plus the values since; added in order, as Python would */
    long long add[MAX_BOUNDS + 1];
} Hist;

#define SAT_CACHE 8
typedef struct {
    const char *p; /* into the block, alive for the whole call */
    Py_ssize_t n;
    PyObject *name;            /* str */
    PyObject *keys[CELLS]; /* (satellite, action, result), built on first use */
    long long transfers[CELLS], bytes[CELLS];
    long long requested[CELLS]; /* Size of canceled downloads: no egress (issue 14) */
} Satellite;

typedef struct {
    PyObject *state, *read_time, *errors;
    int have_read_time;
    double read_time_value, slack_low, slack_high;
    PyObject *lines, *transfers, *bytes, *requested, *sizes, *durations, *in_flight, *top_pieces,
        *top_counts, *geo, *geo_record; /* geo and its bound record method, or NULL */
    Py_ssize_t top_capacity, max_pending;
    const char *clock_ts; /* last timestamp converted, and its value */
    Py_ssize_t clock_ts_len;
    double clock_value;
    Satellite sats[SAT_CACHE];
    int n_sats;
    /* not yet written back (see flush) */
    const char *last_ts;
    Py_ssize_t last_ts_len;
    long long info, debug, in_flight_add[N_ACTIONS];
    Hist hists[HIST_CACHE];
    int n_hists, size_hist[N_ACTIONS], duration_hist[CELLS]; /* index or -1 */
    int have_clocks, newest_dirty;
    int avail_dirty;        /* avail is not written back yet */
    long long avail;
    int index_starts;       /* NodeState.index_starts: started lines go to Python */
    double newest, next_sweep; /* NodeState._newest, ._next_sweep */
    PyObject *pending;         /* NodeState.pending (a sweep replaces it) */
    /* GeoRecorder.record's common case (see geo_record); dropped whenever Python runs */
    int have_geo;
    double geo_slot_end;
    PyObject *geo_cur, *geo_cache, *geo_clock;
} Ctx;

static int
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

static int
attr_double(PyObject *obj, PyObject *name, double *out)
{
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL)
        return -1;
    *out = PyFloat_AsDouble(v);
    Py_DECREF(v);
    return (*out == -1.0 && PyErr_Occurred()) ? -1 : 0;
}

static int
set_attr_double(PyObject *obj, PyObject *name, double value)
{
    PyObject *v = PyFloat_FromDouble(value);
    if (v == NULL)
        return -1;
    int rc = PyObject_SetAttr(obj, name, v);
    Py_DECREF(v);
    return rc;
}

static void
hists_clear(Ctx *ctx)
{
    for (int i = 0; i < ctx->n_hists; i++) {
        Py_CLEAR(ctx->hists[i].hist);
        Py_CLEAR(ctx->hists[i].counts);
    }
    ctx->n_hists = 0;
    for (int a = 0; a < N_ACTIONS; a++)
        ctx->size_hist[a] = -1;
    for (int i = 0; i < CELLS; i++)
        ctx->duration_hist[i] = -1;
}

static int
flush_hist(Hist *h)
{
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
    return set_attr_double(h->hist, a_sum, h->sum);
}

static void
geo_forget(Ctx *ctx)
{
    ctx->have_geo = 0;
    Py_CLEAR(ctx->geo_cur);
    Py_CLEAR(ctx->geo_cache);
}

/* Write back everything added up in C, and forget what Python code may change. */
static int
flush(Ctx *ctx)
{
    int rc = 0;
    if (ctx->last_ts != NULL) {
        PyObject *ts = PyUnicode_DecodeASCII(ctx->last_ts, ctx->last_ts_len, NULL);
        if (ts == NULL || PyObject_SetAttr(ctx->state, a_last_timestamp, ts) < 0)
            rc = -1;
        Py_XDECREF(ts);
        ctx->last_ts = NULL;
    }
    if (ctx->info && dict_add_long(ctx->lines, s_info, ctx->info) < 0)
        rc = -1;
    if (ctx->debug && dict_add_long(ctx->lines, s_debug, ctx->debug) < 0)
        rc = -1;
    ctx->info = ctx->debug = 0;
    if (ctx->avail_dirty) {
        PyObject *v = PyLong_FromLongLong(ctx->avail);
        if (v == NULL || PyObject_SetAttr(ctx->state, a_available_space, v) < 0)
            rc = -1;
        Py_XDECREF(v);
        ctx->avail_dirty = 0;
    }
    for (int a = 0; a < N_ACTIONS; a++) {
        if (ctx->in_flight_add[a] &&
            dict_add_long(ctx->in_flight, s_action[a], ctx->in_flight_add[a]) < 0)
            rc = -1;
        ctx->in_flight_add[a] = 0;
    }
    for (int i = 0; i < ctx->n_sats; i++) {
        Satellite *s = &ctx->sats[i];
        for (int k = 0; k < CELLS; k++) {
            if (s->transfers[k] && dict_add_long(ctx->transfers, s->keys[k], s->transfers[k]) < 0)
                rc = -1;
            if (s->bytes[k] && dict_add_long(ctx->bytes, s->keys[k], s->bytes[k]) < 0)
                rc = -1;
            if (s->requested[k] &&
                dict_add_long(ctx->requested, s->keys[k], s->requested[k]) < 0)
                rc = -1;
            s->transfers[k] = s->bytes[k] = s->requested[k] = 0;
        }
    }
    for (int i = 0; i < ctx->n_hists; i++)
        if (flush_hist(&ctx->hists[i]) < 0)
            rc = -1;
    hists_clear(ctx);
    if (ctx->newest_dirty && set_attr_double(ctx->state, a_newest, ctx->newest) < 0)
        rc = -1;
    ctx->have_clocks = ctx->newest_dirty = 0;
    Py_CLEAR(ctx->pending);
    geo_forget(ctx);
    return rc;
}

/* A method of the NodeState (or another object) that may look at anything: flush first.
 * Returns its result (a new reference) or NULL. */
static PyObject *
call_python_result(Ctx *ctx, PyObject *obj, PyObject *name, PyObject *arg1, PyObject *arg2)
{
    if (flush(ctx) < 0)
        return NULL;
    return PyObject_CallMethodObjArgs(obj, name, arg1, arg2, NULL);
}

static int
call_python(Ctx *ctx, PyObject *obj, PyObject *name, PyObject *arg1, PyObject *arg2)
{
    PyObject *r = call_python_result(ctx, obj, name, arg1, arg2);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* The cached Hist of a Histogram object, loaded on first use after a flush. */
static Hist *
hist_cache(Ctx *ctx, PyObject *hist, int *slot)
{
    if (*slot >= 0)
        return &ctx->hists[*slot];
    if (ctx->n_hists == HIST_CACHE && flush(ctx) < 0)
        return NULL;
    Hist *h = &ctx->hists[ctx->n_hists];
    memset(h, 0, sizeof(*h));
    PyObject *bounds = PyObject_GetAttr(hist, a_bounds);
    if (bounds == NULL)
        return NULL;
    int ok = PyTuple_Check(bounds) && PyTuple_GET_SIZE(bounds) <= MAX_BOUNDS;
    h->n = ok ? PyTuple_GET_SIZE(bounds) : 0;
    for (Py_ssize_t i = 0; ok && i < h->n; i++) {
        h->bounds[i] = PyFloat_AsDouble(PyTuple_GET_ITEM(bounds, i));
        ok = !(h->bounds[i] == -1.0 && PyErr_Occurred());
    }
    Py_DECREF(bounds);
    h->counts = ok ? PyObject_GetAttr(hist, a_counts) : NULL;
    if (h->counts == NULL || !PyList_Check(h->counts) || PyList_GET_SIZE(h->counts) != h->n + 1 ||
        attr_double(hist, a_sum, &h->sum) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "a Histogram needs a short tuple of bounds and "
                                             "a list of len(bounds) + 1 counts");
        Py_CLEAR(h->counts);
        return NULL;
    }
    Py_INCREF(hist);
    h->hist = hist;
    *slot = ctx->n_hists++;
    return h;
}

/* hist.counts[bisect_left(hist.bounds, value)] += 1; hist.sum += value */
static void
observe(Hist *h, double value)
{
    Py_ssize_t i = 0;
    while (i < h->n && h->bounds[i] < value)
        i++;
    h->add[i]++;
    h->sum += value;
}

static int
load_clocks(Ctx *ctx)
{
    if (ctx->have_clocks)
        return 0;
    if (attr_double(ctx->state, a_newest, &ctx->newest) < 0 ||
        attr_double(ctx->state, a_next_sweep, &ctx->next_sweep) < 0)
        return -1;
    ctx->have_clocks = 1;
    return 0;
}

static PyObject *
pending(Ctx *ctx)
{
    if (ctx->pending == NULL) {
        ctx->pending = PyObject_GetAttr(ctx->state, a_pending);
        if (ctx->pending != NULL && !PyDict_Check(ctx->pending)) {
            PyErr_SetString(PyExc_TypeError, "NodeState.pending must be a dict");
            Py_CLEAR(ctx->pending);
        }
    }
    return ctx->pending;
}

/* NodeState._event_time: 1 and *when set, 0 for "no usable time", -1 on error */
static int
event_time(Ctx *ctx, const CommonLine *c, double *when)
{
    double logged;
    int have_logged = 1;
    if (ctx->clock_ts != NULL && ctx->clock_ts_len == c->ts_len &&
        memcmp(ctx->clock_ts, c->ts, (size_t)c->ts_len) == 0) {
        logged = ctx->clock_value;
    }
    else { /* TimestampCache only reads the string: no flush needed */
        PyObject *ts = PyUnicode_DecodeASCII(c->ts, c->ts_len, NULL);
        if (ts == NULL)
            return -1;
        PyObject *clock = PyObject_GetAttr(ctx->state, a_clock);
        PyObject *v = clock ? PyObject_CallOneArg(clock, ts) : NULL;
        Py_XDECREF(clock);
        Py_DECREF(ts);
        if (v == NULL)
            return -1;
        if (v == Py_None) {
            have_logged = 0;
            logged = 0.0;
        }
        else {
            logged = PyFloat_AsDouble(v);
            if (logged == -1.0 && PyErr_Occurred()) {
                Py_DECREF(v);
                return -1;
            }
            ctx->clock_ts = c->ts;
            ctx->clock_ts_len = c->ts_len;
            ctx->clock_value = logged;
        }
        Py_DECREF(v);
    }
    if (!ctx->have_read_time) {
        *when = logged;
        return have_logged;
    }
    if (!have_logged) {
        *when = ctx->read_time_value;
        return 1;
    }
    double lag = ctx->read_time_value - logged;
    *when = (ctx->slack_low <= lag && lag <= ctx->slack_high) ? ctx->read_time_value : logged;
    return 1;
}

static void
sats_clear(Ctx *ctx)
{
    for (int i = 0; i < ctx->n_sats; i++) {
        Py_CLEAR(ctx->sats[i].name);
        for (int k = 0; k < CELLS; k++)
            Py_CLEAR(ctx->sats[i].keys[k]);
    }
    ctx->n_sats = 0;
}

static Satellite *
satellite(Ctx *ctx, const CommonLine *c)
{
    for (int i = 0; i < ctx->n_sats; i++) {
        Satellite *s = &ctx->sats[i];
        if (s->n == c->sat_len && memcmp(s->p, c->sat, (size_t)c->sat_len) == 0)
            return s;
    }
    if (ctx->n_sats == SAT_CACHE) { /* more satellites than any network has: start over */
        if (flush(ctx) < 0)
            return NULL;
        sats_clear(ctx);
    }
    Satellite *s = &ctx->sats[ctx->n_sats];
    memset(s, 0, sizeof(*s));
    s->name = PyUnicode_DecodeASCII(c->sat, c->sat_len, NULL);
    if (s->name == NULL)
        return NULL;
    s->p = c->sat;
    s->n = c->sat_len;
    ctx->n_sats++;
    return s;
}

/* NodeState._start */
static int
start(Ctx *ctx, const CommonLine *c, PyObject *piece, PyObject *remote)
{
    double when;
    int have = event_time(ctx, c, &when);
    if (have <= 0 || load_clocks(ctx) < 0)
        return have < 0 || PyErr_Occurred() ? -1 : 0;
    if (when > ctx->newest) {
        ctx->newest = when;
        ctx->newest_dirty = 1;
    }
    if (when >= ctx->next_sweep && call_python(ctx, ctx->state, a_sweep, NULL, NULL) < 0)
        return -1;
    PyObject *table = pending(ctx);
    if (table == NULL)
        return -1;
    if (PyDict_GET_SIZE(table) >= ctx->max_pending) {
        Py_ssize_t n = ctx->max_pending / 10 > 1 ? ctx->max_pending / 10 : 1;
        PyObject *count = PyLong_FromSsize_t(n);
        int rc = count ? call_python(ctx, ctx->state, a_evict_oldest, count, NULL) : -1;
        Py_XDECREF(count);
        if (rc < 0 || (table = pending(ctx)) == NULL)
            return -1;
    }
    PyObject *action = s_action[c->action];
    PyObject *key = PyTuple_Pack(3, piece, action, remote);
    if (key == NULL)
        return -1;
    int rc = -1;
    int present = PyDict_Contains(table, key);
    if (present > 0) { /* a retry of the same piece: the older start never finished */
        PyObject *expired = PyObject_GetAttr(ctx->state, a_starts_expired);
        PyObject *one = PyLong_FromLong(1);
        PyObject *more = expired && one ? PyNumber_Add(expired, one) : NULL;
        Py_XDECREF(expired);
        Py_XDECREF(one);
        present = more ? PyObject_SetAttr(ctx->state, a_starts_expired, more) : -1;
        Py_XDECREF(more);
        ctx->in_flight_add[c->action]--;
    }
    PyObject *value = present >= 0 ? PyFloat_FromDouble(when) : NULL;
    if (value != NULL && PyDict_SetItem(table, key, value) == 0) {
        ctx->in_flight_add[c->action]++;
        rc = 0;
    }
    Py_XDECREF(value);
    Py_DECREF(key);
    return rc;
}

/* NodeState._finish for a successful or canceled transfer (the pairing table is not empty) */
static int
finish(Ctx *ctx, const CommonLine *c, PyObject *table, PyObject *piece, PyObject *remote)
{
    PyObject *action = s_action[c->action];
    PyObject *key = PyTuple_Pack(3, piece, action, remote);
    if (key == NULL)
        return -1;
    PyObject *started = PyDict_GetItemWithError(table, key);
    if (started == NULL) {
        Py_DECREF(key);
        return PyErr_Occurred() ? -1 : 0;
    }
    double begun = PyFloat_AsDouble(started);
    int rc = (begun == -1.0 && PyErr_Occurred()) ? -1 : PyDict_DelItem(table, key);
    Py_DECREF(key);
    if (rc < 0)
        return -1;
    ctx->in_flight_add[c->action]--;
    double when;
    int have = event_time(ctx, c, &when);
    if (have <= 0)
        return have;
    int cell = c->result * N_ACTIONS + c->action;
    int *slot = &ctx->duration_hist[cell];
    if (*slot < 0) {
        PyObject *hist = PyDict_GetItemWithError(ctx->durations, s_duration_key[cell]);
        if (hist != NULL)
            Py_INCREF(hist);
        else if (PyErr_Occurred())
            return -1;
        else if ((hist = PyObject_CallMethodObjArgs(ctx->state, a_durations_for, action,
                                                    s_result[c->result], NULL)) == NULL)
            return -1;
        Hist *h = hist_cache(ctx, hist, slot);
        Py_DECREF(hist);
        if (h == NULL)
            return -1;
    }
    observe(&ctx->hists[*slot], when > begun ? when - begun : 0.0);
    return 0;
}

/*
 * GeoRecorder.record(action, remote, size, now) when everything it needs is already there:
 * the time is inside the current slot, the host is in the locator's young cache, and the
 * window key has an entry in the current slot. Then it only adds to that entry, as Python
 * does. Returns 1 when done, 0 when Python's record must do it (it then starts afresh), -1
 * on error. Keep in step with exporter/geo/recorder.py.
 */
static int
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

/* NodeState._feed_text's inline part (or NodeState.apply, for a cancel) for one line. */
static int
apply_common(Ctx *ctx, const CommonLine *c)
{
    if (c->info)
        ctx->info++;
    else
        ctx->debug++;
    ctx->last_ts = c->ts;
    ctx->last_ts_len = c->ts_len;
    int a = c->action;
    PyObject *action = s_action[a];
    PyObject *piece = NULL, *remote = NULL, *size = NULL;
    int rc = -1;
    remote = PyUnicode_DecodeASCII(c->remote, c->remote_len, NULL);
    if (remote == NULL)
        goto done;
    if (c->started) {
        if (c->has_avail) {
            ctx->avail = c->avail;
            ctx->avail_dirty = 1;
        }
        piece = PyUnicode_DecodeASCII(c->piece, c->piece_len, NULL);
        rc = piece ? start(ctx, c, piece, remote) : -1;
        goto done;
    }

    Satellite *sat = satellite(ctx, c);
    if (sat == NULL)
        goto done;
    int cell = c->result * N_ACTIONS + a;
    if (sat->keys[cell] == NULL) {
        PyObject *key = PyTuple_Pack(3, sat->name, action, s_result[c->result]);
        int known = key ? PyDict_Contains(ctx->transfers, key) : -1;
        if (known < 0) {
            Py_XDECREF(key);
            goto done;
        }
        if (!known) { /* first line of a new satellite: its label, zero series for all */
            Py_DECREF(key);
            PyObject *label =
                call_python_result(ctx, ctx->state, a_new_satellite, sat->name, NULL);
            key = label ? PyTuple_Pack(3, label, action, s_result[c->result]) : NULL;
            Py_XDECREF(label);
            if (key == NULL)
                goto done;
        }
        sat->keys[cell] = key;
    }
    sat->transfers[cell]++;
    if (c->result && a < N_DOWNLOADS) /* a canceled download: its Size is the requested size */
        sat->requested[cell] += c->size;
    else
        sat->bytes[cell] += c->size;
    if (c->result == 0 && ctx->size_hist[a] < 0) { /* sizes: of successful transfers only */
        PyObject *hist = PyDict_GetItemWithError(ctx->sizes, action);
        if (hist == NULL) {
            if (!PyErr_Occurred())
                PyErr_SetObject(PyExc_KeyError, action);
            goto done;
        }
        if (hist_cache(ctx, hist, &ctx->size_hist[a]) == NULL)
            goto done;
    }
    if (c->result == 0)
        observe(&ctx->hists[ctx->size_hist[a]], (double)c->size);

    PyObject *table = pending(ctx);
    if (table == NULL)
        goto done;
    int pairing = PyDict_GET_SIZE(table) > 0;
    if (a == 0 || pairing) { /* the piece id: for the top pieces (GET) and for pairing */
        piece = PyUnicode_DecodeASCII(c->piece, c->piece_len, NULL);
        if (piece == NULL)
            goto done;
    }
    if (a == 0) { /* GET: TopPieces.add, its common branches inline */
        PyObject *count = PyDict_GetItemWithError(ctx->top_counts, piece);
        if (count != NULL) {
            if (dict_add_long(ctx->top_counts, piece, 1) < 0)
                goto done;
        }
        else if (PyErr_Occurred())
            goto done;
        else if (PyDict_GET_SIZE(ctx->top_counts) < ctx->top_capacity) {
            PyObject *one = PyLong_FromLong(1);
            int set = one ? PyDict_SetItem(ctx->top_counts, piece, one) : -1;
            Py_XDECREF(one);
            if (set < 0)
                goto done;
        }
        else { /* full: TopPieces only touches its own counts, no flush needed */
            PyObject *r = PyObject_CallMethodObjArgs(ctx->top_pieces, a_add, piece, NULL);
            if (r == NULL)
                goto done;
            Py_DECREF(r);
        }
    }
    if (pairing && finish(ctx, c, table, piece, remote) < 0)
        goto done;
    if (ctx->geo != NULL && c->remote_len > 0) { /* the recorder keeps its own state */
        int done_in_c = geo_record_fast(ctx, c, action);
        if (done_in_c < 0)
            goto done;
        if (!done_in_c) {
            geo_forget(ctx); /* record() may open a slot or swap the cache */
            size = PyLong_FromLongLong(c->size);
            PyObject *args[] = {action, remote, size, ctx->read_time};
            PyObject *r = size ? PyObject_Vectorcall(ctx->geo_record, args, 4, NULL) : NULL;
            if (r == NULL)
                goto done;
            Py_DECREF(r);
        }
    }
    rc = 0;
done:
    Py_XDECREF(piece);
    Py_XDECREF(remote);
    Py_XDECREF(size);
    return rc;
}

/* Is NodeState.index_starts true (see the top of the file)? 1, 0, or -1 on error. */
static int
indexing_starts(Ctx *ctx)
{
    PyObject *flag = PyObject_GetAttr(ctx->state, a_index_starts);
    if (flag == NULL)
        return -1;
    int on = PyObject_IsTrue(flag);
    Py_DECREF(flag);
    if (on < 0)
        return -1;
    ctx->index_starts = on;
    return on;
}

static int
apply_other(Ctx *ctx, const char *p, Py_ssize_t n)
{
    PyObject *line = PyUnicode_DecodeUTF8(p, n, PyUnicode_AsUTF8(ctx->errors));
    if (line == NULL)
        return -1;
    int rc = call_python(ctx, ctx->state, a_line, line, ctx->read_time);
    Py_DECREF(line);
    if (rc == 0 && !ctx->index_starts && indexing_starts(ctx) < 0) /* the line may start it */
        rc = -1;
    return rc;
}

static Py_ssize_t
attr_ssize(PyObject *obj, PyObject *name)
{
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL)
        return -1;
    Py_ssize_t n = PyLong_AsSsize_t(v);
    Py_DECREF(v);
    return n;
}

static int
ctx_init(Ctx *ctx, PyObject *state, PyObject *read_time, PyObject *errors)
{
    memset(ctx, 0, sizeof(*ctx));
    hists_clear(ctx);
    ctx->state = state;
    ctx->read_time = read_time;
    ctx->errors = errors;
    if (read_time != Py_None) {
        ctx->have_read_time = 1;
        ctx->read_time_value = PyFloat_AsDouble(read_time);
        if (ctx->read_time_value == -1.0 && PyErr_Occurred())
            return -1;
    }
    PyObject **slots[] = {&ctx->lines,     &ctx->transfers, &ctx->bytes,
                          &ctx->requested, &ctx->sizes,     &ctx->durations,
                          &ctx->in_flight, &ctx->top_pieces, &ctx->geo};
    PyObject *names[] = {a_lines,     a_transfers, a_bytes,      a_requested, a_sizes,
                         a_durations, a_in_flight, a_top_pieces, a_geo};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        *slots[i] = PyObject_GetAttr(state, names[i]);
        if (*slots[i] == NULL)
            return -1;
        if (i < 7 && !PyDict_Check(*slots[i])) {
            PyErr_Format(PyExc_TypeError, "NodeState.%U must be a dict", names[i]);
            return -1;
        }
    }
    if (indexing_starts(ctx) < 0)
        return -1;
    if (ctx->geo == Py_None)
        Py_CLEAR(ctx->geo);
    else if ((ctx->geo_record = PyObject_GetAttr(ctx->geo, a_record)) == NULL)
        return -1;
    ctx->top_counts = PyObject_GetAttr(ctx->top_pieces, a_counts);
    if (ctx->top_counts == NULL)
        return -1;
    if (!PyDict_Check(ctx->top_counts)) {
        PyErr_SetString(PyExc_TypeError, "TopPieces.counts must be a dict");
        return -1;
    }
    ctx->top_capacity = attr_ssize(ctx->top_pieces, a_capacity);
    ctx->max_pending = attr_ssize(state, a_max_pending);
    if (PyErr_Occurred())
        return -1;
    PyObject *slack = PyObject_GetAttr(state, a_read_time_slack);
    if (slack == NULL)
        return -1;
    int ok = PyArg_ParseTuple(slack, "dd", &ctx->slack_low, &ctx->slack_high);
    Py_DECREF(slack);
    return ok ? 0 : -1;
}

static void
ctx_clear(Ctx *ctx)
{
    Py_CLEAR(ctx->lines);
    Py_CLEAR(ctx->transfers);
    Py_CLEAR(ctx->bytes);
    Py_CLEAR(ctx->requested);
    Py_CLEAR(ctx->sizes);
    Py_CLEAR(ctx->durations);
    Py_CLEAR(ctx->in_flight);
    Py_CLEAR(ctx->top_pieces);
    Py_CLEAR(ctx->top_counts);
    Py_CLEAR(ctx->geo);
    Py_CLEAR(ctx->geo_record);
    Py_CLEAR(ctx->geo_clock);
    geo_forget(ctx);
    Py_CLEAR(ctx->pending);
    sats_clear(ctx);
    hists_clear(ctx);
}

PyDoc_STRVAR(scan_doc,
"scan(state, block, read_time, errors)\n--\n\n"
"Apply the lines of `block` (bytes, lines separated by b'\\n', no trailing newline) to\n"
"the NodeState `state`, in order. Lines other than the common ones are decoded with\n"
"`errors` and passed to state._line(line, read_time). Returns the number of lines.");

static PyObject *
scan(PyObject *module, PyObject *args)
{
    PyObject *state, *read_time, *errors;
    Py_buffer block;
    if (!PyArg_ParseTuple(args, "Oy*OU:scan", &state, &block, &read_time, &errors))
        return NULL;
    Ctx ctx;
    int rc = ctx_init(&ctx, state, read_time, errors);
    const char *line = block.buf, *end = line + block.len;
    Py_ssize_t lines = 0;
    while (rc == 0) {
        lines++;
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        const char *line_end = nl != NULL ? nl : end;
        CommonLine c;
        int common = parse_common(line, line_end, &c) || parse_behind_prefix(line, line_end, &c);
        if (common && !(c.started && ctx.index_starts))
            rc = apply_common(&ctx, &c);
        else
            rc = apply_other(&ctx, line, line_end - line);
        if (nl == NULL)
            break;
        line = nl + 1;
    }
    if (ctx.lines != NULL) { /* what was counted before an error is kept, as in Python */
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        if (flush(&ctx) < 0)
            rc = -1;
        if (type != NULL) {
            PyErr_Clear();
            PyErr_Restore(type, value, tb);
        }
    }
    ctx_clear(&ctx);
    PyBuffer_Release(&block);
    if (rc < 0)
        return NULL;
    return PyLong_FromSsize_t(lines);
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS, scan_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "exporter._hotpath",
    "The common log lines of a batch, applied in C (see exporter/_hotpath.c).", -1, methods,
};

static int
intern(PyObject **slot, const char *s)
{
    *slot = PyUnicode_InternFromString(s);
    return *slot == NULL ? -1 : 0;
}

PyMODINIT_FUNC
PyInit__hotpath(void)
{
    QUOTED_STOP['"'] = QUOTED_STOP['\t'] = 1;
    for (int i = 0x80; i < 256; i++)
        QUOTED_STOP[i] = 1;
    struct {
        PyObject **slot;
        const char *s;
    } names[] = {
        {&s_info, "info"},
        {&s_debug, "debug"},             {&a_lines, "lines"},
        {&a_transfers, "transfers"},     {&a_bytes, "bytes"}, {&a_requested, "requested"},
        {&a_sizes, "sizes"},             {&a_durations, "durations"},
        {&a_in_flight, "in_flight"},     {&a_pending, "pending"},
        {&a_top_pieces, "top_pieces"},   {&a_counts, "counts"},
        {&a_capacity, "capacity"},       {&a_add, "add"},
        {&a_geo, "geo"},                 {&a_record, "record"},
        {&a_max_pending, "max_pending"}, {&a_newest, "_newest"},
        {&a_next_sweep, "_next_sweep"},  {&a_starts_expired, "starts_expired"},
        {&a_clock, "_clock"},            {&a_last_timestamp, "last_timestamp"},
        {&a_sweep, "_sweep"},            {&a_evict_oldest, "_evict_oldest"},
        {&a_new_satellite, "_new_satellite"}, {&a_line, "_line"},
        {&a_bounds, "bounds"},           {&a_sum, "sum"},
        {&a_durations_for, "_durations_for"}, {&a_read_time_slack, "read_time_slack"},
        {&a_geo_slot_end, "_slot_end"},   {&a_available_space, "available_space"},
        {&a_index_starts, "index_starts"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (intern(names[i].slot, names[i].s) < 0)
            return NULL;
    for (int r = 0; r < N_RESULTS; r++)
        if (intern(&s_result[r], RESULT_NAMES[r]) < 0)
            return NULL;
    for (int a = 0; a < N_ACTIONS; a++)
        if (intern(&s_action[a], ACTION_NAMES[a]) < 0)
            return NULL;
    for (int k = 0; k < CELLS; k++) {
        s_duration_key[k] = PyTuple_Pack(2, s_action[k % N_ACTIONS], s_result[k / N_ACTIONS]);
        if (s_duration_key[k] == NULL)
            return NULL;
    }
    return PyModule_Create(&module);
}
