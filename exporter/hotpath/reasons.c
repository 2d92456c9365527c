/*
 * The reason of a `... canceled` line with a `reason` and of a `... failed` line, in C:
 * exporter/reasons.py classify() on the same table. The table is not copied here: state.py
 * hands reasons._RULES over at import (set_reasons), so there is one list of needles.
 * What is mirrored is classify's code: lower-case the text (ASCII: the scan only takes ASCII
 * values), the first rule with a needle in it wins, then `(?:^|: )eof$`, else `other`.
 * tests/test_hotpath.py holds classify() here equal to reasons.classify.
 *
 * Also here: the per-(action, reason) counts for NodeState.errors and .cancel_reasons the
 * scan adds up, and their write-back.
 */
#include "hotpath.h"

#define MAX_NEEDLES 128
#define MAX_TEXT 4096 /* longer texts go to Python */

static struct {
    char *text;
    Py_ssize_t len;
    int label;
} needles[MAX_NEEDLES];
static int n_needles = -1; /* -1: set_reasons was not called, every such line goes to Python */
static int digit_needles[MAX_NEEDLES], n_digit_needles; /* needles holding a digit */
static PyObject *labels[MAX_REASONS];
static int n_labels, label_eof, label_other;
int reason_speed_too_low = -1, reason_database = -1;
static PyObject *keys[N_ACTIONS][MAX_REASONS]; /* (action, label) */

static int
label_index(PyObject *label)
{
    for (int i = 0; i < n_labels; i++)
        if (PyUnicode_Compare(labels[i], label) == 0)
            return i;
    if (n_labels == MAX_REASONS) {
        PyErr_SetString(PyExc_ValueError, "too many reason labels");
        return -2;
    }
    Py_INCREF(label);
    labels[n_labels] = label;
    return n_labels++;
}

static int
add_needle(PyObject *needle, int label)
{
    Py_ssize_t n;
    const char *s = PyUnicode_Check(needle) ? PyUnicode_AsUTF8AndSize(needle, &n) : NULL;
    if (s == NULL || !PyUnicode_IS_ASCII(needle) || n_needles == MAX_NEEDLES) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "needles: at most 128 lower-case ASCII strings");
        return -1;
    }
    char *copy = PyMem_Malloc((size_t)n + 1);
    if (copy == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(copy, s, (size_t)n + 1);
    for (Py_ssize_t i = 0; i < n; i++)
        if (s[i] >= '0' && s[i] <= '9') { /* see classify: a text holding it is not cached */
            digit_needles[n_digit_needles++] = n_needles;
            break;
        }
    needles[n_needles].text = copy;
    needles[n_needles].len = n;
    needles[n_needles++].label = label;
    return 0;
}

const char set_reasons_doc[] = PyDoc_STR(
    "set_reasons(rules, speed_too_low, database)\n--\n\n"
    "The table of exporter.reasons.classify ((label, needles), ...), and the labels the scan\n"
    "treats apart (a failed upload that is a cancel; a database error: Python). Once: a\n"
    "second call changes nothing.");

PyObject *
set_reasons(PyObject *module, PyObject *args)
{
    PyObject *rules, *speed, *database;
    if (!PyArg_ParseTuple(args, "O!UU:set_reasons", &PyTuple_Type, &rules, &speed, &database))
        return NULL;
    if (n_needles >= 0) /* set already (exporter.state imported again): the table stays */
        Py_RETURN_NONE;
    n_needles = 0;
    n_digit_needles = 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(rules); i++) {
        PyObject *rule = PyTuple_GET_ITEM(rules, i), *label, *list;
        if (!PyArg_ParseTuple(rule, "UO!", &label, &PyTuple_Type, &list))
            goto fail;
        int index = label_index(label);
        if (index < 0)
            goto fail;
        for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(list); k++)
            if (add_needle(PyTuple_GET_ITEM(list, k), index) < 0)
                goto fail;
    }
    PyObject *eof = PyUnicode_InternFromString("eof"), *other = PyUnicode_InternFromString("other");
    label_eof = eof ? label_index(eof) : -2;
    label_other = other ? label_index(other) : -2;
    Py_XDECREF(eof);
    Py_XDECREF(other);
    reason_speed_too_low = label_index(speed);
    reason_database = label_index(database);
    if (label_eof < 0 || label_other < 0 || reason_speed_too_low < 0 || reason_database < 0)
        goto fail;
    for (int a = 0; a < N_ACTIONS; a++)
        for (int r = 0; r < n_labels; r++)
            if ((keys[a][r] = PyTuple_Pack(2, s_action[a], labels[r])) == NULL)
                goto fail;
    Py_RETURN_NONE;
fail:
    n_needles = -1; /* unusable: Python classifies */
    return NULL;
}

static const char *
find_needle(const char *hay, Py_ssize_t n, const char *needle, Py_ssize_t m)
{
    if (m == 0)
        return hay;
    for (const char *p = hay, *end = hay + n - m; p <= end; p++) {
        p = memchr(p, needle[0], (size_t)(end - p + 1));
        if (p == NULL)
            return NULL;
        if (memcmp(p, needle, (size_t)m) == 0)
            return p;
    }
    return NULL;
}

/*
 * Labels remembered by the shape of the text, as reasons.classify does: lower case, each run
 * of digits one '0'. Exact for needles without a digit: such a needle occurs in a text if and
 * only if it occurs in every text of the same shape (a match can neither span a run nor
 * change when a run it does not touch changes length), and so does `(?:^|: )eof$`; a text
 * holding a needle with a digit (`x509: `) is classified without the cache. Direct-mapped; a
 * colliding shape only replaces the slot, so crafted texts cost at most the uncached search.
 */
#define SHAPE_SLOTS 512
#define SHAPE_MAX 120
static struct {
    uint64_t hash;
    int len, label; /* len 0: empty slot */
    char text[SHAPE_MAX];
} shapes[SHAPE_SLOTS];

static int
label_of(const char *low, Py_ssize_t n)
{
    for (int i = 0; i < n_needles; i++)
        if (needles[i].len <= n && find_needle(low, n, needles[i].text, needles[i].len))
            return needles[i].label;
    /* _BARE_EOF: (?:^|: )eof$ ($ also before a final newline, which a line cannot hold) */
    if (n >= 3 && memcmp(low + n - 3, "eof", 3) == 0 &&
        (n == 3 || (n >= 5 && memcmp(low + n - 5, ": ", 2) == 0)))
        return label_eof;
    return label_other;
}

/* classify(text): the label index, or -1 when Python must do it (no table, a long text). */
int
classify(const char *text, Py_ssize_t n)
{
    if (n_needles < 0 || n > MAX_TEXT)
        return -1;
    char low[MAX_TEXT], shape[SHAPE_MAX];
    Py_ssize_t len = 0;
    uint64_t hash = 14695981039346656037ULL; /* FNV-1a over the shape */
    for (Py_ssize_t i = 0; i < n; i++) {
        char ch = text[i];
        low[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
        if (ch >= '0' && ch <= '9') {
            if (i > 0 && text[i - 1] >= '0' && text[i - 1] <= '9')
                continue; /* the run has its '0' */
            ch = '0';
        } else {
            ch = low[i];
        }
        if (len < SHAPE_MAX)
            shape[len] = ch;
        len++;
        hash = (hash ^ (unsigned char)ch) * 1099511628211ULL;
    }
    if (len > SHAPE_MAX || len == 0)
        return label_of(low, n);
    for (int i = 0; i < n_digit_needles; i++) {
        int k = digit_needles[i];
        if (needles[k].len <= n && find_needle(low, n, needles[k].text, needles[k].len))
            return label_of(low, n);
    }
    int slot = (int)(hash % SHAPE_SLOTS);
    if (shapes[slot].len == len && shapes[slot].hash == hash &&
        memcmp(shapes[slot].text, shape, (size_t)len) == 0)
        return shapes[slot].label;
    int label = label_of(low, n);
    shapes[slot].hash = hash;
    shapes[slot].len = (int)len;
    shapes[slot].label = label;
    memcpy(shapes[slot].text, shape, (size_t)len);
    return label;
}

const char classify_doc[] = PyDoc_STR(
    "classify(text)\n--\n\nThe scan's reason label of an ASCII text (exporter.reasons.classify), "
    "None when it would leave the line to Python.");

PyObject *
py_classify(PyObject *module, PyObject *arg)
{
    const char *s;
    Py_ssize_t n;
    int ascii = ascii_arg(arg, "classify", &s, &n);
    if (ascii < 0)
        return NULL;
    int r = ascii ? classify(s, n) : -1;
    if (r < 0)
        Py_RETURN_NONE;
    return Py_NewRef(labels[r]);
}

/* A failure's or a cancel's reason counted (its key may be new: hotpath.h note) */
int
count_reason(Ctx *ctx, int action, int reason, int failed)
{
    long long *add = failed ? &ctx->errors_add[action][reason]
                            : &ctx->cancels_add[action][reason];
    unsigned char *known = failed ? &ctx->known_errors[action][reason]
                                  : &ctx->known_cancels[action][reason];
    ctx->reasons_dirty = 1;
    (*add)++;
    return note(ctx, failed ? ctx->error_counts : ctx->cancel_counts, keys[action][reason], add,
                known);
}

/* NodeState.errors and .cancel_reasons: what the scan counted, as write_back does the rest */
int
reasons_write_back(Ctx *ctx, int full)
{
    if (!ctx->reasons_dirty)
        return 0;
    ctx->reasons_dirty = !full;
    int rc = 0;
    for (int a = 0; a < N_ACTIONS; a++)
        for (int r = 0; r < n_labels; r++)
            if (counter(ctx->error_counts, keys[a][r], &ctx->errors_add[a][r],
                        &ctx->known_errors[a][r], full) < 0 ||
                counter(ctx->cancel_counts, keys[a][r], &ctx->cancels_add[a][r],
                        &ctx->known_cancels[a][r], full) < 0)
                rc = -1;
    return rc;
}
