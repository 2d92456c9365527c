/* exporter._hotpath: what the C files of the hot path share (see module.c for the why). */
#ifndef HOTPATH_H
#define HOTPATH_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* parser.MAX_PIECE_SIZE and parser.MAX_FIELD (tests/test_poison.py holds them equal) */
#define MAX_PIECE_SIZE (64LL << 20)
#define MAX_FIELD 128

#define N_ACTIONS 5
extern const char *ACTION_NAMES[N_ACTIONS];
#define N_DOWNLOADS 3 /* GET, GET_AUDIT, GET_REPAIR come first */
/* the results of the finished lines read here (failures carry an error: Python reads them) */
#define N_RESULTS 2
extern const char *RESULT_NAMES[N_RESULTS];
#define CELLS (N_RESULTS * N_ACTIONS) /* index: result * N_ACTIONS + action */

/* interned strings: dict keys and attribute names (defined in module.c) */
extern PyObject *s_action[N_ACTIONS], *s_result[N_RESULTS], *s_info, *s_debug;
extern PyObject *s_duration_key[CELLS]; /* (action, result) */
extern PyObject *a_lines, *a_transfers, *a_bytes, *a_sizes, *a_durations, *a_in_flight,
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
    PyObject *geo_locator, *geo_old, *geo_nets; /* locator, its ._old and ._v4_nets */
    PyObject *geo_cur_private;                  /* recorder._cur_private */
#define GEO_MEMO 64 /* (bucket, action) -> entry of the current slot (geo.c: slot_entry_of) */
    struct {
        PyObject *bucket, *entry;
        int action;
    } geo_memo[GEO_MEMO];
    int geo_memo_used;
    Py_ssize_t geo_generation;                  /* locator._generation */
} Ctx;

/* scan.c */
void grammar_init(void);
/* apply.c */
int ctx_init(Ctx *ctx, PyObject *state, PyObject *read_time, PyObject *errors);
void ctx_clear(Ctx *ctx);
int flush(Ctx *ctx);
int apply_common(Ctx *ctx, const CommonLine *c);
int apply_other(Ctx *ctx, const char *p, Py_ssize_t n);
int attr_double(PyObject *obj, PyObject *name, double *out);
/* geo.c */
void geo_forget(Ctx *ctx);
int geo_record_fast(Ctx *ctx, const CommonLine *c, PyObject *action);

#endif
