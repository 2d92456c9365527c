/* exporter._hotpath: what the C files of the hot path share (see module.c for the why). */
#ifndef HOTPATH_H
#define HOTPATH_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* parser.MAX_PIECE_SIZE and parser.MAX_FIELD (tests/test_poison.py holds them equal) */
static inline int
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

#define MAX_PIECE_SIZE (64LL << 20)
#define MAX_FIELD 128

#define N_ACTIONS 5
extern const char *ACTION_NAMES[N_ACTIONS];
#define N_DOWNLOADS 3 /* GET, GET_AUDIT, GET_REPAIR come first */
/* the results of the finished lines: success, canceled, failed */
#define N_RESULTS 3
#define FAILED 2
extern const char *RESULT_NAMES[N_RESULTS];
#define CELLS (N_RESULTS * N_ACTIONS) /* index: result * N_ACTIONS + action */
/* the levels read here: info, debug, warn, error (parser.LEVELS' values) */
#define N_LEVELS 4
#define DEBUG_LEVEL 1
#define MAX_REASONS 32 /* reason labels (reasons.REASONS) */
#define MAX_EVENTS 96  /* event names (events.c) */

/* interned strings: dict keys and attribute names (defined in module.c) */
extern PyObject *s_action[N_ACTIONS], *s_result[N_RESULTS], *s_level[N_LEVELS];
extern PyObject *s_duration_key[CELLS]; /* (action, result) */
extern PyObject *a_lines, *a_transfers, *a_bytes, *a_sizes, *a_durations, *a_in_flight,
    *a_requested, *a_pending, *a_top_pieces, *a_counts, *a_capacity, *a_add, *a_geo, *a_record,
    *a_max_pending, *a_newest, *a_next_sweep, *a_starts_expired, *a_clock, *a_last_timestamp,
    *a_sweep, *a_evict_oldest, *a_new_satellite, *a_line, *a_bounds, *a_sum, *a_durations_for,
    *a_read_time_slack, *a_geo_slot_end, *a_available_space, *a_index_starts, *a_errors,
    *a_cancel_reasons;

/* ---- the grammar of a common line (parser.COMMON_LINE_RE) ------------------------------ */

typedef struct {
    const char *ts, *piece, *sat, *remote;
    Py_ssize_t ts_len, piece_len, sat_len, remote_len;
    int level;   /* index into s_level */
    int started; /* "... started", else a finished transfer with this result: */
    int result;  /* index into RESULT_NAMES */
    int reason;  /* a failure's or a cancel's reason label (reasons.c), -1 for none */
    int has_sent; /* a canceled download's reason says how many bytes it sent: */
    long long sent;
    int action;  /* index into ACTION_NAMES */
    int has_size;
    long long size;
    int has_avail; /* an `Available Space` the gauge may take (parser.available_space) */
    long long avail;
} CommonLine;

/* ---- applying a line ------------------------------------------------------------------- */
/*
 * Counters are added up in C while common lines follow each other and written back to the
 * NodeState before any Python code runs (the parser for another line, a sweep of the pairing
 * table, ...: what Python may see or order differently, see write_back in apply.c) and by
 * flush() at the end of the block. Python therefore always sees the state it would have
 * built itself; the scrape cannot look in between, since the caller holds NodeState.lock
 * for the whole batch.
 */

#define MAX_BOUNDS 32
#define HIST_CACHE 24
typedef struct {
    PyObject *hist, *counts; /* strong references; counts is hist.counts */
    Py_ssize_t n;            /* len(hist.bounds) */
    double bounds[MAX_BOUNDS];
    double sum; /* hist.sum plus the values since; added in order, as Python would */
    int sum_stale; /* Python may have run since the last flush: hist.sum may have moved on */
    int dirty, sum_dirty; /* add[], sum not written back */
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
    int dirty;                  /* a count above is not written back */
    unsigned char known[3][CELLS]; /* the key is in transfers, bytes, requested (flush) */
} Satellite;

typedef struct {
    PyObject *state, *read_time, *errors;
    int have_read_time;
    double read_time_value, slack_low, slack_high;
    PyObject *lines, *transfers, *bytes, *requested, *sizes, *durations, *in_flight, *top_pieces,
        *top_counts, *geo, *geo_record; /* geo and its bound record method, or NULL */
    Py_ssize_t max_pending;
    const char *clock_ts; /* last timestamp converted, and its value */
    Py_ssize_t clock_ts_len;
    double clock_value;
    Satellite sats[SAT_CACHE];
    int n_sats;
    /* not yet written back (see flush) */
    int dirty; /* anything below (or in sats, hists) not written back */
    const char *last_ts;
    Py_ssize_t last_ts_len;
    long long levels[N_LEVELS], in_flight_add[N_ACTIONS];
    unsigned char known_lines[N_LEVELS], known_in_flight[N_ACTIONS]; /* see counter() */
    PyObject *error_counts, *cancel_counts; /* NodeState.errors, .cancel_reasons */
    int reasons_dirty;
    long long errors_add[N_ACTIONS][MAX_REASONS], cancels_add[N_ACTIONS][MAX_REASONS];
    unsigned char known_errors[N_ACTIONS][MAX_REASONS], known_cancels[N_ACTIONS][MAX_REASONS];
    Hist hists[HIST_CACHE];
    int n_hists, size_hist[N_ACTIONS], duration_hist[CELLS]; /* index or -1 */
    int have_clocks, newest_dirty;
    int avail_dirty;        /* avail is not written back yet */
    long long avail;
    int index_starts;       /* NodeState.index_starts: started lines go to Python */
    double newest, next_sweep; /* NodeState._newest, ._next_sweep */
    PyObject *pending;         /* NodeState.pending, a Pending (re-read after Python ran) */
    /* GeoRecorder.record's common case (see geo_record); dropped whenever Python runs */
    int have_geo;
    double geo_slot_end;
    PyObject *geo_cur, *geo_cache, *geo_clock;
    PyObject *geo_locator, *geo_old, *geo_nets; /* locator, its ._old and ._v4_nets */
    PyObject *geo_cur_private;                  /* recorder._cur_private */
#define GEO_MEMO 64 /* (bucket, action) -> entry of the current slot (geo.c: slot_entry_of) */
    struct {
        PyObject *bucket, *entry;
        int action;
    } geo_memo[GEO_MEMO];
    int geo_memo_used;
    /* the /8 answers of ._v4_nets looked up so far (geo.c: net_bucket); NULL: none there */
    PyObject *geo_n8[256];
    unsigned char geo_n8_known[256];
    int geo_n8_used;
    Py_ssize_t geo_generation;                  /* locator._generation */
#define GEO_ADDS 64 /* entry -> the transfers and bytes not yet added to it (geo.c) */
    struct {
        PyObject *entry;
        long long count, bytes;
    } geo_adds[GEO_ADDS];
    int geo_adds_used;
    /* the counts whose key may be new to its dict, in the order of their first line: the
     * write-back puts them in first (note, flush.c) */
#define NOTED 64
    struct {
        PyObject *dict, *key; /* borrowed: the key is held where the delta is */
        long long *delta;
        unsigned char *known;
    } noted[NOTED];
    int n_noted;
    /* NodeState.events (fetched on first use) and what the plain event lines add (events.c) */
    PyObject *event_counts;
    int events_dirty;
    long long events_add[MAX_EVENTS];
    unsigned char known_events[MAX_EVENTS];
} Ctx;

/* module.c */
int ascii_arg(PyObject *arg, const char *what, const char **s, Py_ssize_t *n);
/* scan.c */
void grammar_init(void);
/* prefix.c: the length of the prefix prefixes.strip takes off a line (0 none, -1 unsure) */
Py_ssize_t prefix_len(const char *p, const char *end);
/* apply.c */
int ctx_init(Ctx *ctx, PyObject *state, PyObject *read_time, PyObject *errors);
void ctx_clear(Ctx *ctx);
void hists_clear(Ctx *ctx);
int apply_common(Ctx *ctx, const CommonLine *c);
int apply_other(Ctx *ctx, const char *p, Py_ssize_t n);
/* flush.c */
int flush(Ctx *ctx);                  /* everything (the end of the batch) */
int write_back(Ctx *ctx, int full);   /* full = 0: what Python may see, before it runs */
int write_back_plain(Ctx *ctx);       /* before a Python line that is no transfer */
int counter_add(PyObject *dict, PyObject *key, long long *delta, unsigned char *known, int full);
/* see counter_add; most counters are 0, or wait for the full flush, when a flush walks them */
static inline int
counter(PyObject *dict, PyObject *key, long long *delta, unsigned char *known, int full)
{
    return *delta == 0 || (!full && *known) ? 0 : counter_add(dict, key, delta, known, full);
}
int noted_back(Ctx *ctx, int full);
/*
 * A count of a key not known to be in its dict. Python puts a new key in at its first line;
 * the write-back would put the new keys of a stretch of C lines in table order (and a
 * checkpoint writes the dicts in their order). So the count is noted, in line order, and
 * the write-back (noted_back) looks its key up first. *known = 2: noted.
 */
static inline int
note(Ctx *ctx, PyObject *dict, PyObject *key, long long *delta, unsigned char *known)
{
    if (*known)
        return 0;
    if (ctx->n_noted == NOTED && noted_back(ctx, 0) < 0)
        return -1;
    ctx->noted[ctx->n_noted].dict = dict;
    ctx->noted[ctx->n_noted].key = key;
    ctx->noted[ctx->n_noted].delta = delta;
    ctx->noted[ctx->n_noted++].known = known;
    *known = 2;
    return 0;
}
int dict_add_long(PyObject *dict, PyObject *key, long long delta);
int attr_double(PyObject *obj, PyObject *name, double *out);
int set_attr_double(PyObject *obj, PyObject *name, double value);
/* pending.c: NodeState.pending (exporter._hotpath.Pending) */
extern PyTypeObject Pending_Type;
int pending_ready(void);
int pending_check(PyObject *obj);
Py_ssize_t pending_size(PyObject *obj);
int pending_put(PyObject *obj, int action, const char *piece, Py_ssize_t plen,
                const char *remote, Py_ssize_t rlen, double when);
int pending_take(PyObject *obj, int action, const char *piece, Py_ssize_t plen,
                 const char *remote, Py_ssize_t rlen, double *when);
/* hash.c: the keyed hash of the C tables' keys (pending.c, top.c); hash_init at import */
Py_hash_t hash_key(const char *p, Py_ssize_t n);
void hash_init(void);
/* top.c: TopPieces.counts (exporter._hotpath.TopCounts) */
extern PyTypeObject TopCounts_Type;
int top_check(PyObject *obj);
int top_add(PyObject *obj, const char *piece, Py_ssize_t len); /* TopPieces.add */
/* clock.c */
int log_time(const char *ts, Py_ssize_t n, double *value);
/* reasons.c */
extern int reason_speed_too_low, reason_database;
int classify(const char *text, Py_ssize_t n);
int reasons_write_back(Ctx *ctx, int full);
int count_reason(Ctx *ctx, int action, int reason, int failed);
/* events.c */
int apply_event(Ctx *ctx, const char *p, Py_ssize_t n);
int may_be_transfer(const char *p, Py_ssize_t n);
int events_write_back(Ctx *ctx, int full);
/* house.c: a housekeeping line it reads (1), or one for Python (0, nothing changed) */
int apply_house(Ctx *ctx, const char *logger, Py_ssize_t logger_len, const char *message,
                Py_ssize_t message_len, const char *fields, const char *end);
/* geo.c */
void geo_forget(Ctx *ctx);
int geo_adds_flush(Ctx *ctx);
int geo_record_fast(Ctx *ctx, const CommonLine *c, PyObject *action);

#endif
