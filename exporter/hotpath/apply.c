/* Applying a line to the NodeState: counters added up in C, written back by flush.c. */
#include "hotpath.h"

void
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

/* A method of the NodeState (or another object) that may look at anything: flush first.
 * Returns its result (a new reference) or NULL. */
static PyObject *
call_python_result(Ctx *ctx, PyObject *obj, PyObject *name, PyObject *arg1, PyObject *arg2)
{
    if (write_back(ctx, 0) < 0)
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
    if (ctx->n_hists == HIST_CACHE) {
        if (flush(ctx) < 0)
            return NULL;
        hists_clear(ctx);
    }
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
static int
observe(Hist *h, double value)
{
    if (h->sum_stale) {
        if (attr_double(h->hist, a_sum, &h->sum) < 0)
            return -1;
        h->sum_stale = 0;
    }
    Py_ssize_t i = 0;
    while (i < h->n && h->bounds[i] < value)
        i++;
    h->add[i]++;
    h->sum += value;
    h->dirty = h->sum_dirty = 1;
    return 0;
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
        if (ctx->pending != NULL && !pending_check(ctx->pending)) {
            PyErr_SetString(PyExc_TypeError, "NodeState.pending must be an "
                                             "exporter._hotpath.Pending");
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
    else if (log_time(c->ts, c->ts_len, &logged)) { /* clock.c: the usual shape */
        ctx->clock_ts = c->ts;
        ctx->clock_ts_len = c->ts_len;
        ctx->clock_value = logged;
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
start(Ctx *ctx, const CommonLine *c)
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
    if (pending_size(table) >= ctx->max_pending) {
        Py_ssize_t n = ctx->max_pending / 10 > 1 ? ctx->max_pending / 10 : 1;
        PyObject *count = PyLong_FromSsize_t(n);
        int rc = count ? call_python(ctx, ctx->state, a_evict_oldest, count, NULL) : -1;
        Py_XDECREF(count);
        if (rc < 0 || (table = pending(ctx)) == NULL)
            return -1;
    }
    int present = pending_put(table, c->action, c->piece, c->piece_len, c->remote,
                              c->remote_len, when);
    if (present < 0)
        return -1;
    if (present) { /* a retry of the same piece: the older start never finished */
        PyObject *expired = PyObject_GetAttr(ctx->state, a_starts_expired);
        PyObject *one = PyLong_FromLong(1);
        PyObject *more = expired && one ? PyNumber_Add(expired, one) : NULL;
        Py_XDECREF(expired);
        Py_XDECREF(one);
        if (more == NULL || PyObject_SetAttr(ctx->state, a_starts_expired, more) < 0) {
            Py_XDECREF(more);
            return -1;
        }
        Py_DECREF(more);
        ctx->in_flight_add[c->action]--;
    }
    ctx->in_flight_add[c->action]++;
    return 0;
}

/* NodeState._finish for a successful or canceled transfer (the pairing table is not empty) */
static int
finish(Ctx *ctx, const CommonLine *c, PyObject *table)
{
    double begun;
    int found = pending_take(table, c->action, c->piece, c->piece_len, c->remote,
                             c->remote_len, &begun);
    if (found <= 0)
        return found;
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
        else if ((hist = PyObject_CallMethodObjArgs(ctx->state, a_durations_for,
                                                    s_action[c->action], s_result[c->result],
                                                    NULL)) == NULL)
            return -1;
        Hist *h = hist_cache(ctx, hist, slot);
        Py_DECREF(hist);
        if (h == NULL)
            return -1;
    }
    return observe(&ctx->hists[*slot], when > begun ? when - begun : 0.0);
}

/* NodeState._feed_text's inline part (or NodeState.apply, for a cancel) for one line. */
static int
apply_line(Ctx *ctx, const CommonLine *c)
{
    ctx->levels[c->level]++;
    if (!ctx->known_lines[c->level] && /* the key may be new: its place (hotpath.h note) */
        note(ctx, ctx->lines, s_level[c->level], &ctx->levels[c->level],
             &ctx->known_lines[c->level]) < 0)
        return -1;
    ctx->last_ts = c->ts;
    ctx->last_ts_len = c->ts_len;
    int a = c->action;
    PyObject *action = s_action[a];
    PyObject *remote = NULL, *size = NULL;
    int rc = -1;
    if (c->started) {
        if (c->has_avail && c->action >= N_DOWNLOADS) { /* an upload's start, as parse_line */
            ctx->avail = c->avail;
            ctx->avail_dirty = 1;
        }
        return start(ctx, c);
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
    sat->dirty = 1;
    sat->transfers[cell]++;
    if (c->result && a < N_DOWNLOADS) { /* an unfinished download: its Size was requested */
        sat->requested[cell] += c->size;
        if (c->size != 0 && note(ctx, ctx->requested, sat->keys[cell], &sat->requested[cell],
                                 &sat->known[2][cell]) < 0) /* requested has no zero series */
            goto done;
        if (c->has_sent) /* what its reason says it sent is egress */
            sat->bytes[cell] += c->sent;
    }
    else
        sat->bytes[cell] += c->size;
    if (c->reason >= 0 && count_reason(ctx, a, c->reason, c->result == FAILED) < 0)
        goto done;
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
    if (c->result == 0 && observe(&ctx->hists[ctx->size_hist[a]], (double)c->size) < 0)
        goto done;

    PyObject *table = pending(ctx);
    if (table == NULL)
        goto done;
    if (a == 0 && top_add(ctx->top_counts, c->piece, c->piece_len) < 0) /* TopPieces.add, top.c */
        goto done;
    if (pending_size(table) > 0 && finish(ctx, c, table) < 0)
        goto done;
    if (ctx->geo != NULL && c->remote_len > 0) { /* the recorder keeps its own state */
        int done_in_c = geo_record_fast(ctx, c, action);
        if (done_in_c < 0)
            goto done;
        if (!done_in_c) {
            if (geo_adds_flush(ctx) < 0) /* record() may close the slot they are in */
                goto done;
            geo_forget(ctx); /* record() may open a slot or swap the cache */
            remote = PyUnicode_DecodeASCII(c->remote, c->remote_len, NULL);
            size = remote ? PyLong_FromLongLong(c->size) : NULL;
            PyObject *args[] = {action, remote, size, ctx->read_time};
            PyObject *r = size ? PyObject_Vectorcall(ctx->geo_record, args, 4, NULL) : NULL;
            if (r == NULL)
                goto done;
            Py_DECREF(r);
        }
    }
    rc = 0;
done:
    Py_XDECREF(remote);
    Py_XDECREF(size);
    return rc;
}

int
apply_common(Ctx *ctx, const CommonLine *c)
{
    ctx->dirty = 1;
    int rc = apply_line(ctx, c);
    ctx->dirty = 1; /* again: a flush within the line (Python ran) cleared the flag */
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

int
apply_other(Ctx *ctx, const char *p, Py_ssize_t n)
{
    int event = apply_event(ctx, p, n); /* a plain event line: no Python (events.c) */
    if (event == 0) { /* behind a prefix, as prefixes.parse_prefixed strips it */
        Py_ssize_t skip = prefix_len(p, p + n);
        if (skip > 0)
            event = apply_event(ctx, p + skip, n - skip);
    }
    if (event != 0)
        return event < 0 ? -1 : 0;
    PyObject *line = PyUnicode_DecodeUTF8(p, n, PyUnicode_AsUTF8(ctx->errors));
    if (line == NULL)
        return -1;
    int rc;
    if (may_be_transfer(p, n)) {
        rc = call_python(ctx, ctx->state, a_line, line, ctx->read_time);
        if (rc == 0 && !ctx->index_starts && indexing_starts(ctx) < 0) /* it may start it */
            rc = -1;
    }
    else { /* no transfer: Python sees less of the state (flush.c write_back_plain) */
        PyObject *r = write_back_plain(ctx) < 0 ? NULL
                          : PyObject_CallMethodObjArgs(ctx->state, a_line, line,
                                                       ctx->read_time, NULL);
        rc = r == NULL ? -1 : 0;
        Py_XDECREF(r);
    }
    Py_DECREF(line);
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

int
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
    PyObject **slots[] = {&ctx->lines,     &ctx->transfers,   &ctx->bytes,
                          &ctx->requested, &ctx->sizes,       &ctx->durations,
                          &ctx->in_flight, &ctx->error_counts, &ctx->cancel_counts,
                          &ctx->top_pieces, &ctx->geo};
    PyObject *names[] = {a_lines,     a_transfers, a_bytes,  a_requested,      a_sizes,
                         a_durations, a_in_flight, a_errors, a_cancel_reasons, a_top_pieces,
                         a_geo};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        *slots[i] = PyObject_GetAttr(state, names[i]);
        if (*slots[i] == NULL)
            return -1;
        if (i < 9 && !PyDict_Check(*slots[i])) {
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
    if (!top_check(ctx->top_counts)) {
        PyErr_SetString(PyExc_TypeError, "TopPieces.counts must be an "
                                         "exporter._hotpath.TopCounts");
        return -1;
    }
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

void
ctx_clear(Ctx *ctx)
{
    Py_CLEAR(ctx->lines);
    Py_CLEAR(ctx->transfers);
    Py_CLEAR(ctx->bytes);
    Py_CLEAR(ctx->requested);
    Py_CLEAR(ctx->sizes);
    Py_CLEAR(ctx->durations);
    Py_CLEAR(ctx->in_flight);
    Py_CLEAR(ctx->error_counts);
    Py_CLEAR(ctx->cancel_counts);
    Py_CLEAR(ctx->top_pieces);
    Py_CLEAR(ctx->top_counts);
    Py_CLEAR(ctx->geo);
    Py_CLEAR(ctx->geo_record);
    Py_CLEAR(ctx->geo_clock);
    Py_CLEAR(ctx->event_counts);
    for (int i = 0; i < GEO_ADDS; i++) /* written back by flush, unless that failed */
        Py_CLEAR(ctx->geo_adds[i].entry);
    geo_forget(ctx);
    Py_CLEAR(ctx->pending);
    sats_clear(ctx);
    hists_clear(ctx);
}

