/*
 * The plain event lines in C: a line of the common layout (`TS\tLEVEL\tLOGGER\tMESSAGE\t{...}`),
 * or of the updater's without a logger (`TS\tLEVEL\tMESSAGE\t{...}`, half the lines the v1.99
 * bench log left to Python), that is no piece transfer and no housekeeping line. For those,
 * parser.parse_line computes only `event = events.classify_message(message)` (plus
 * events.classify_error_text(fields) for a WARN/ERROR line with "database" in its fields) and
 * NodeState.apply adds events[event] += 1, lines[level] += 1 and sets last_timestamp (issue
 * 15: 27.7k such lines of the 1M-line v1.99 bench log cost 22 % of `report`'s instructions
 * in the Python call).
 *
 * The tables are not copied from the source: state.py hands events.EVENTS,
 * events.ERROR_TEXT_EVENTS, the keys of housekeeping.READERS and parser.PIECESTORE and
 * parser.PIECESTORE_LOGGERS over at import (set_events). What is mirrored is the code around
 * them: parse_line's checks of the layout, classify_message's `Node ... started`, the order
 * of the checks in parser._other. Anything else -- a byte >= 0x80 or a control character
 * (NUL, `\r`) anywhere, another number of tabs, a level parse_line maps elsewhere (DPANIC,
 * PANIC, FATAL), a very long line, a transfer or housekeeping message -- goes to Python
 * unchanged, but for the three housekeeping messages house.c reads (apply_house).
 * tests/test_hotpath_events.py holds the paths equal.
 *
 * The counts take the deferred write-back of the others (flush.c), a key that may be new
 * noted in line order (hotpath.h note), so that the dicts' order is the one Python gives.
 */
#include "hotpath.h"
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define MAX_LINE (64 << 10) /* longer event lines go to Python */
#define SLOTS 512           /* the message table: open addressing, a power of two */
#define MAX_NEEDLES 16
#define MAX_LOGGERS 8

typedef struct {
    char *text; /* NULL: a free slot */
    Py_ssize_t len;
    int event;            /* index into names, -1 for none */
    unsigned char reader; /* a housekeeping.READERS message: Python reads its fields */
    unsigned char transfer; /* a parser.PIECESTORE message (a transfer for PIECESTORE_LOGGERS) */
} Message;

static Message table[SLOTS];
static int ready; /* set_events ran: without it every line goes to Python */
static PyObject *names[MAX_EVENTS], *a_events;
static int n_names, node_started;
static struct {
    char *text;
    Py_ssize_t len;
    int event;
} needles[MAX_NEEDLES];
static int n_needles;
static struct {
    char *text;
    Py_ssize_t len;
    int implied; /* holds another logger's text: may_be_transfer need not look for it */
} loggers[MAX_LOGGERS];
static int n_loggers;

static uint32_t
hash(const char *s, Py_ssize_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (Py_ssize_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static Message *
lookup(const char *s, Py_ssize_t n)
{
    for (uint32_t i = hash(s, n) & (SLOTS - 1);; i = (i + 1) & (SLOTS - 1)) {
        Message *m = &table[i];
        if (m->text == NULL || (m->len == n && memcmp(m->text, s, (size_t)n) == 0))
            return m;
    }
}

static int
contains(const char *hay, Py_ssize_t n, const char *needle, Py_ssize_t m)
{
    if (m == 0)
        return 1;
    for (const char *p = hay, *end = hay + n - m; p <= end; p++) {
        p = memchr(p, needle[0], (size_t)(end - p + 1));
        if (p == NULL)
            return 0;
        if (memcmp(p, needle, (size_t)m) == 0)
            return 1;
    }
    return 0;
}

/* An ASCII str's chars, copied (NUL-terminated); NULL and an exception for anything else. */
static char *
ascii_copy(PyObject *s, Py_ssize_t *n)
{
    const char *chars = PyUnicode_Check(s) && PyUnicode_IS_ASCII(s)
                            ? PyUnicode_AsUTF8AndSize(s, n) : NULL;
    if (chars == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "set_events: the texts must be ASCII str");
        return NULL;
    }
    char *copy = PyMem_Malloc((size_t)*n + 1);
    if (copy == NULL)
        PyErr_NoMemory();
    else
        memcpy(copy, chars, (size_t)*n + 1);
    return copy;
}

/* The entry of a message, added if new; NULL on error (non-ASCII text: that message stays
 * with Python, see add_messages). */
static Message *
entry(PyObject *message)
{
    Py_ssize_t n;
    if (!PyUnicode_Check(message)) {
        PyErr_SetString(PyExc_TypeError, "set_events: messages must be str");
        return NULL;
    }
    const char *s = PyUnicode_IS_ASCII(message) ? PyUnicode_AsUTF8AndSize(message, &n) : NULL;
    if (s == NULL)
        return NULL;
    Message *m = lookup(s, n);
    if (m->text != NULL)
        return m;
    static int used;
    if (used == SLOTS / 2) {
        PyErr_SetString(PyExc_ValueError, "set_events: too many messages");
        return NULL;
    }
    if ((m->text = ascii_copy(message, &m->len)) == NULL)
        return NULL;
    used++;
    m->event = -1;
    return m;
}

static int
name_index(PyObject *name)
{
    if (!PyUnicode_Check(name)) {
        PyErr_SetString(PyExc_TypeError, "set_events: event names must be str");
        return -1;
    }
    for (int i = 0; i < n_names; i++)
        if (PyUnicode_Compare(names[i], name) == 0)
            return i;
    if (n_names == MAX_EVENTS) {
        PyErr_SetString(PyExc_ValueError, "set_events: too many event names");
        return -1;
    }
    Py_INCREF(name);
    PyUnicode_InternInPlace(&name);
    names[n_names] = name;
    return n_names++;
}

/* the messages of an iterable: flag (reader or transfer) set on each */
static int
add_messages(PyObject *messages, int reader)
{
    PyObject *it = PyObject_GetIter(messages), *message;
    if (it == NULL)
        return -1;
    while ((message = PyIter_Next(it)) != NULL) {
        /* a non-ASCII message can never match an ASCII line: nothing to mark */
        Message *m = PyUnicode_Check(message) && !PyUnicode_IS_ASCII(message)
                         ? NULL : entry(message);
        Py_DECREF(message);
        if (m == NULL && PyErr_Occurred())
            break;
        if (m != NULL && reader)
            m->reader = 1;
        else if (m != NULL)
            m->transfer = 1;
    }
    Py_DECREF(it);
    return PyErr_Occurred() ? -1 : 0;
}

const char set_events_doc[] = PyDoc_STR(
    "set_events(events, error_text_events, readers, piecestore, piecestore_loggers)\n--\n\n"
    "The tables of exporter.events (EVENTS, ERROR_TEXT_EVENTS), the messages\n"
    "housekeeping.READERS and parser.PIECESTORE read, and parser.PIECESTORE_LOGGERS: the scan\n"
    "then counts the plain event lines itself. Once: a second call changes nothing.");

PyObject *
set_events(PyObject *module, PyObject *args)
{
    PyObject *events, *error_texts, *readers, *piecestore, *piecestore_loggers;
    if (!PyArg_ParseTuple(args, "O!O!OOO:set_events", &PyDict_Type, &events, &PyTuple_Type,
                          &error_texts, &readers, &piecestore, &piecestore_loggers))
        return NULL;
    if (ready) /* set already (exporter.state imported again): the tables stay */
        Py_RETURN_NONE;
    if (a_events == NULL && (a_events = PyUnicode_InternFromString("events")) == NULL)
        return NULL;
    PyObject *message, *name, *started = PyUnicode_InternFromString("node_started");
    if (started == NULL || (node_started = name_index(started)) < 0) {
        Py_XDECREF(started);
        return NULL;
    }
    Py_DECREF(started);
    Py_ssize_t pos = 0;
    while (PyDict_Next(events, &pos, &message, &name)) {
        int event = name_index(name);
        Message *m = event < 0 ? NULL : PyUnicode_Check(message) && !PyUnicode_IS_ASCII(message)
                                            ? NULL : entry(message);
        if (PyErr_Occurred())
            return NULL;
        if (m != NULL)
            m->event = event;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(error_texts); i++) {
        PyObject *needle;
        if (n_needles == MAX_NEEDLES) {
            PyErr_SetString(PyExc_ValueError, "set_events: too many error texts");
            return NULL;
        }
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(error_texts, i), "UU", &needle, &name))
            return NULL;
        int event = name_index(name);
        if (event < 0 || (needles[n_needles].text = ascii_copy(needle, &needles[n_needles].len))
                             == NULL)
            return NULL;
        needles[n_needles++].event = event;
    }
    if (add_messages(readers, 1) < 0 || add_messages(piecestore, 0) < 0)
        return NULL;
    PyObject *it = PyObject_GetIter(piecestore_loggers), *logger;
    if (it == NULL)
        return NULL;
    while ((logger = PyIter_Next(it)) != NULL) {
        if (n_loggers == MAX_LOGGERS)
            PyErr_SetString(PyExc_ValueError, "set_events: too many piecestore loggers");
        else
            loggers[n_loggers].text = ascii_copy(logger, &loggers[n_loggers].len);
        Py_DECREF(logger);
        if (PyErr_Occurred())
            break;
        n_loggers++;
    }
    Py_DECREF(it);
    if (PyErr_Occurred())
        return NULL;
    for (int i = 0; i < n_loggers; i++)
        for (int j = 0; j < n_loggers && !loggers[i].implied; j++)
            loggers[i].implied = j != i && !loggers[j].implied &&
                                 contains(loggers[i].text, loggers[i].len, loggers[j].text,
                                          loggers[j].len);
    ready = 1;
    Py_RETURN_NONE;
}

/* The first byte from p that is < 0x20 or >= 0x80 (a tab, another control character, a
 * non-ASCII byte), or end: 16 bytes at a time (signed bytes: one compare finds both). */
static inline const char *
next_stop(const char *p, const char *end)
{
#ifdef __SSE2__
    const __m128i space = _mm_set1_epi8(0x20);
    for (; end - p >= 16; p += 16) {
        int m = _mm_movemask_epi8(_mm_cmplt_epi8(_mm_loadu_si128((const __m128i *)p), space));
        if (m != 0)
            return p + __builtin_ctz((unsigned)m);
    }
#endif
    while (p < end && (signed char)*p >= 0x20)
        p++;
    return p;
}

static int
is_piecestore_logger(const char *s, Py_ssize_t n)
{
    for (int i = 0; i < n_loggers; i++)
        if (loggers[i].len == n && memcmp(loggers[i].text, s, (size_t)n) == 0)
            return 1;
    return 0;
}

/*
 * Can NodeState._line make a piece transfer of this line (parse_line, or behind a prefix,
 * prefixes.parse_prefixed)? Only with a logger of parser.PIECESTORE_LOGGERS, and in every
 * layout the logger is the line's own text (a JSON line's "N" is not unescaped, untab only
 * turns runs of spaces into tabs): 0 when none is in the line, 1 when one may be. flush.c
 * write_back_plain relies on it. tests/test_hotpath_events.py holds it against parse_line.
 */
int
may_be_transfer(const char *p, Py_ssize_t n)
{
    if (!ready)
        return 1;
    for (int i = 0; i < n_loggers; i++)
        if (!loggers[i].implied && contains(p, n, loggers[i].text, loggers[i].len))
            return 1;
    return 0;
}

/*
 * A plain event line, applied as parse_line + NodeState.apply would: 1 when done, 0 when the
 * line is for Python (nothing changed), -1 on error.
 */
int
apply_event(Ctx *ctx, const char *p, Py_ssize_t n)
{
    if (!ready || n > MAX_LINE)
        return 0;
    const char *end = p + n, *tab[4], *q = p;
    int tabs = 0; /* four, or three for the updater's layout without a logger */
    for (; tabs < 4; tabs++) { /* and nothing below 0x20 or over 0x7f */
        q = next_stop(q, end);
        if (q == end)
            break;
        if (*q != '\t')
            return 0;
        tab[tabs] = q++;
    }
    if (tabs < 3 || (tabs == 4 && next_stop(q, end) != end))
        return 0;
    const char *ts = p, *fields = tab[tabs - 1] + 1;
    Py_ssize_t ts_len = tab[0] - p, fields_len = end - fields;
    if (fields_len < 2 || fields[0] != '{' || end[-1] != '}')
        return 0;
    if (tabs == 4) { /* parse_line: ts[10:11] == "T", ts[4:5] == "-", no space in ts */
        if (ts_len < 11 || ts[10] != 'T' || ts[4] != '-' || memchr(ts, ' ', (size_t)ts_len))
            return 0;
    }
    else if (ts_len < 20 || ts[4] != '-' || ts[10] != 'T' || ts[13] != ':' ||
             memchr(ts, ' ', (size_t)ts_len)) /* parser._parse_other_layout, _is_timestamp */
        return 0;
    const char *lv = tab[0] + 1;
    int level;
    switch (tab[1] - lv) { /* parser.LEVELS, as far as s_level goes */
    case 4:
        level = memcmp(lv, "INFO", 4) == 0 ? 0 : memcmp(lv, "WARN", 4) == 0 ? 2 : -1;
        break;
    case 5:
        level = memcmp(lv, "DEBUG", 5) == 0 ? DEBUG_LEVEL : memcmp(lv, "ERROR", 5) == 0 ? 3 : -1;
        break;
    default:
        level = -1;
    }
    if (level < 0)
        return 0;
    /* without a logger: `TS\tLEVEL\tMESSAGE\t{...}`, parsed as logger "" */
    const char *logger = tab[1] + 1, *message = tabs == 4 ? tab[2] + 1 : logger;
    Py_ssize_t logger_len = tabs == 4 ? tab[2] - logger : 0;
    Py_ssize_t message_len = tab[tabs - 1] - message;
    Message *m = lookup(message, message_len);
    if (m->text != NULL && m->transfer && is_piecestore_logger(logger, logger_len))
        return 0;
    if (m->text != NULL && m->reader) { /* three of them in C (house.c), the rest in Python */
        int house = apply_house(ctx, logger, logger_len, message, message_len, fields, end);
        if (house <= 0)
            return house;
    }
    /* parser._other: events.classify_message, then the database texts of a WARN/ERROR line */
    int event = m->text != NULL ? m->event : -1;
    if (event < 0 && message_len >= 8 && memcmp(message, "Node ", 5) == 0 &&
        memcmp(message + message_len - 8, " started", 8) == 0)
        event = node_started;
    if (event < 0 && (level == 2 || level == 3) &&
        contains(fields, fields_len, "database", 8))
        for (int i = 0; i < n_needles && event < 0; i++)
            if (contains(fields, fields_len, needles[i].text, needles[i].len))
                event = needles[i].event;
    /* NodeState.apply */
    ctx->dirty = 1;
    if (event >= 0) {
        if (ctx->event_counts == NULL) {
            ctx->event_counts = PyObject_GetAttr(ctx->state, a_events);
            if (ctx->event_counts == NULL)
                return -1;
            if (!PyDict_Check(ctx->event_counts)) {
                Py_CLEAR(ctx->event_counts);
                PyErr_SetString(PyExc_TypeError, "NodeState.events must be a dict");
                return -1;
            }
        }
        ctx->events_add[event]++;
        ctx->events_dirty = 1;
        if (note(ctx, ctx->event_counts, names[event], &ctx->events_add[event],
                 &ctx->known_events[event]) < 0)
            return -1;
    }
    ctx->levels[level]++;
    if (note(ctx, ctx->lines, s_level[level], &ctx->levels[level], &ctx->known_lines[level]) < 0)
        return -1;
    ctx->last_ts = ts;
    ctx->last_ts_len = ts_len;
    return 1;
}

/* NodeState.events: what the scan counted (a new key went in first, noted_back) */
int
events_write_back(Ctx *ctx, int full)
{
    if (!full || !ctx->events_dirty)
        return 0;
    ctx->events_dirty = 0;
    int rc = 0;
    for (int e = 0; e < n_names; e++)
        if (counter(ctx->event_counts, names[e], &ctx->events_add[e], &ctx->known_events[e],
                    1) < 0)
            rc = -1;
    return rc;
}
