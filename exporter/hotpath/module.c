/*
 * exporter._hotpath: the common log lines of a batch, applied to a NodeState in C.
 *
 * Why: in CPython the per-line work for a successful transfer or a "... started" line costs
 * 3-4 us even after one regex finds it, which caps `report` at ~140k lines/s. This module
 * does the same work without the interpreter: it walks a bytes block line by line, reads
 * the lines that parser.COMMON_LINE_RE describes (the same grammar, ASCII only) plus the
 * `... canceled` and `... failed` lines of the same shape, with their `reason` or `error`
 * (issue 15: reasons.c; not the race-lost cancels, which NodeState pairs with their DEBUG
 * line in Python), and updates the NodeState's plain dicts and Histograms exactly as
 * NodeState._feed_text and NodeState.apply do.
 *
 * Issue 15, no Python object per common line: the pairing table of starts is C-owned
 * (pending.c, NodeState.pending when this module is built), log timestamps are read in C
 * (clock.c), and what is added up is written back once per batch; before a Python line
 * only what Python may see or order differently is (flush.c write_back).
 *
 * Every other line -- and any common-looking line it is not sure about -- goes to
 * NodeState._line, in order, so the Python parser stays the one reference; except the plain
 * event lines (no transfer, no housekeeping: parser._other's OTHER tuple), which events.c
 * counts by the tables of exporter/events.py the parser uses, and three housekeeping lines
 * (retain, trash emptying, used-space filewalker), which house.c applies as NodeState._house.
 * tests/test_hotpath.py checks that all paths leave identical state.
 *
 * Rare branches call back into NodeState (_sweep, _evict_oldest, _new_satellite,
 * _durations_for, TopPieces.add, the timestamp cache for odd shapes, geo.record), so there
 * is one implementation of each of them.
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
#include "hotpath.h"

const char *ACTION_NAMES[N_ACTIONS] = {"GET", "GET_AUDIT", "GET_REPAIR", "PUT", "PUT_REPAIR"};
const char *RESULT_NAMES[N_RESULTS] = {"success", "canceled", "failed"};
static const char *LEVEL_NAMES[N_LEVELS] = {"info", "debug", "warn", "error"};
/* interned strings: dict keys and attribute names */
PyObject *s_action[N_ACTIONS], *s_result[N_RESULTS], *s_level[N_LEVELS];
PyObject *s_duration_key[CELLS]; /* (action, result) */
PyObject *a_lines, *a_transfers, *a_bytes, *a_sizes, *a_durations, *a_in_flight,
    *a_requested, *a_pending, *a_top_pieces, *a_counts, *a_capacity, *a_add, *a_geo, *a_record,
    *a_max_pending, *a_newest, *a_next_sweep, *a_starts_expired, *a_clock, *a_last_timestamp,
    *a_sweep, *a_evict_oldest, *a_new_satellite, *a_line, *a_bounds, *a_sum, *a_durations_for,
    *a_read_time_slack, *a_geo_slot_end, *a_available_space, *a_index_starts, *a_errors,
    *a_cancel_reasons;

/* The chars of a str argument of the test-facing readers (timestamp, classify): 1 and *s, *n
 * for an ASCII str, 0 for another str (the scan leaves such text to Python), -1 and TypeError
 * for anything else. */
int
ascii_arg(PyObject *arg, const char *what, const char **s, Py_ssize_t *n)
{
    if (!PyUnicode_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "%s needs a str", what);
        return -1;
    }
    if (!PyUnicode_IS_ASCII(arg))
        return 0;
    *s = PyUnicode_AsUTF8AndSize(arg, n);
    return *s == NULL ? -1 : 1;
}

extern const char scan_doc[], set_reasons_doc[], classify_doc[], timestamp_doc[];
extern const char set_events_doc[], set_house_doc[];
PyObject *set_events(PyObject *module, PyObject *args);
PyObject *set_house(PyObject *module, PyObject *args);
PyObject *py_timestamp(PyObject *module, PyObject *arg);
PyObject *scan(PyObject *module, PyObject *args);
PyObject *set_reasons(PyObject *module, PyObject *args);
PyObject *py_classify(PyObject *module, PyObject *arg);

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS, scan_doc},
    {"set_reasons", set_reasons, METH_VARARGS, set_reasons_doc},
    {"set_events", set_events, METH_VARARGS, set_events_doc},
    {"set_house", set_house, METH_VARARGS, set_house_doc},
    {"classify", py_classify, METH_O, classify_doc},
    {"timestamp", py_timestamp, METH_O, timestamp_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "exporter._hotpath",
    "The common log lines of a batch, applied in C (see exporter/hotpath/module.c).", -1, methods,
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
    grammar_init();
    struct {
        PyObject **slot;
        const char *s;
    } names[] = {
        {&a_errors, "errors"},           {&a_cancel_reasons, "cancel_reasons"},
        {&a_lines, "lines"},
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
    for (int l = 0; l < N_LEVELS; l++)
        if (intern(&s_level[l], LEVEL_NAMES[l]) < 0)
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
    hash_init();
    if (pending_ready() < 0 || PyType_Ready(&TopCounts_Type) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && (PyModule_AddObjectRef(m, "Pending", (PyObject *)&Pending_Type) < 0 ||
                      PyModule_AddObjectRef(m, "TopCounts", (PyObject *)&TopCounts_Type) < 0))
        Py_CLEAR(m);
    return m;
}

