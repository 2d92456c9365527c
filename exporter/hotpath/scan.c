/* The grammar of a common line (parser.COMMON_LINE_RE, exporter/prefixes.py) and the scan loop. */
#include "hotpath.h"
#ifdef __SSE2__
#include <emmintrin.h>
#endif


/* p[0:n] == s[0:n], n a constant: unrolled into word compares (memcmp was a libc call) */
static inline __attribute__((always_inline)) int
same(const char *p, const char *s, size_t n)
{
    uint64_t a, b;
    for (; n >= 8; n -= 8, p += 8, s += 8) {
        memcpy(&a, p, 8);
        memcpy(&b, s, 8);
        if (a != b)
            return 0;
    }
    if (n >= 4) { /* the last 4..7 bytes: two overlapping 4-byte compares */
        uint32_t c, d, e, f;
        memcpy(&c, p, 4);
        memcpy(&d, s, 4);
        memcpy(&e, p + n - 4, 4);
        memcpy(&f, s + n - 4, 4);
        return c == d && e == f;
    }
    if (n >= 2) { /* the last 1..3 bytes: a 2-byte compare, then one byte */
        uint16_t c, d;
        memcpy(&c, p, 2);
        memcpy(&d, s, 2);
        if (c != d)
            return 0;
        p += 2, s += 2, n -= 2;
    }
    return n == 0 || *p == *s;
}

static inline __attribute__((always_inline)) int
lit(const char **pp, const char *end, const char *s, Py_ssize_t n)
{
    if (end - *pp < n || !same(*pp, s, (size_t)n))
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

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL
/* does the word hold a '"', a tab or a byte >= 0x80? (the classic has-zero-byte test) */
static inline int
word_stops(uint64_t v)
{
    uint64_t q = v ^ (ONES * '"'), t = v ^ (ONES * '\t');
    return (((q - ONES) & ~q) | ((t - ONES) & ~t) | v) & HIGHS ? 1 : 0;
}

/* does the word hold a tab, a space or a byte >= 0x80? (the end of a log timestamp, or a
 * byte that makes the line not a common one) */
static inline int
word_ends_ts(uint64_t v)
{
    uint64_t t = v ^ (ONES * '\t'), s = v ^ (ONES * ' ');
    return (((t - ONES) & ~t) | ((s - ONES) & ~s) | v) & HIGHS ? 1 : 0;
}

/* the first '"', tab or byte >= 0x80 from p (or end), 16 or 8 bytes at a time */
static inline const char *
stop(const char *p, const char *end)
{
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), tab = _mm_set1_epi8('\t');
    for (; end - p >= 16; p += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)p);
        int m = _mm_movemask_epi8(
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, tab)), v));
        if (m != 0)
            return p + __builtin_ctz((unsigned)m);
    }
#endif
    for (uint64_t v; end - p >= 8 && (memcpy(&v, p, 8), !word_stops(v)); p += 8)
        ;
    while (p < end && !QUOTED_STOP[(unsigned char)*p])
        p++;
    return p;
}

static inline int
quoted(const char **pp, const char *end, const char **value, Py_ssize_t *len)
{
    const char *p = stop(*pp, end);
    if (p >= end || *p != '"')
        return 0;
    *value = *pp;
    *len = p - *pp;
    *pp = p + 1;
    return 1;
}

/* The digits among the 8 bytes at p as 0..9 each, and how many lead (0 to 8): a byte is a
 * digit when neither w - '0' nor w + (0x7f - '9') nor w has its high bit set. A borrow or
 * carry only reaches the bytes after the first non-digit. */
static inline int
leading_digits(const char *p, uint64_t *x)
{
    uint64_t w;
    memcpy(&w, p, 8);
    *x = w - ONES * '0';
    uint64_t bad = (*x | (w + ONES * (0x7f - '9')) | w) & HIGHS;
    return bad ? __builtin_ctzll(bad) >> 3 : 8;
}

/* the value of the n (1 to 8) digits of leading_digits: moved to the top bytes (the bytes in
 * front become leading zeros), then the pairs, quads and halves added up (simdjson's
 * parse_eight_digits_unrolled) */
static inline uint64_t
digits_value(uint64_t x, int n)
{
    x = n == 8 ? x : (x & ((1ULL << (8 * n)) - 1)) << (8 * (8 - n));
    x = x * 10 + (x >> 8);
    x = ((x & 0x000000FF000000FFULL) * (100 + (1000000ULL << 32)) +
         ((x >> 16) & 0x000000FF000000FFULL) * (1 + (10000ULL << 32))) >> 32;
    return x & 0xFFFFFFFFULL;
}

static const uint64_t POW10[9] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000,
                                  100000000};

/* -?\d+ ; *fits when it has at most 18 digits, and then *value is its value (else undefined) */
static inline __attribute__((always_inline)) int
number(const char **pp, const char *end, int minus, long long *value, int *fits)
{
    const char *p = *pp;
    if (minus && p < end && *p == '-')
        p++;
    const char *digits = p;
    uint64_t v = 0;
    int n = 8;
    while (n == 8 && end - p >= 8) { /* 8 bytes at a time, the value up to 18 digits */
        uint64_t x;
        n = leading_digits(p, &x);
        if (n > 0 && p - digits + n <= 18)
            v = v * POW10[n] + digits_value(x, n);
        p += n;
    }
    if (n == 8) /* fewer than 8 bytes left: one at a time */
        for (; p < end && *p >= '0' && *p <= '9'; p++)
            if (p - digits < 18)
                v = v * 10 + (uint64_t)(*p - '0');
    if (p == digits)
        return 0;
    if (value != NULL) {
        *value = (long long)v;
        *fits = (p - digits) <= 18;
    }
    *pp = p;
    return 1;
}

/* A `Size`: \d+ of at most parser._SIZE_DIGITS (8) digits, as parser._size and COMMON_LINE_RE
 * keep; a longer one (leading zeros too: "000000000042") leaves the line to Python */
static inline __attribute__((always_inline)) int
size_number(const char **pp, const char *end, long long *value, int *fits)
{
    const char *digits = *pp;
    if (!number(pp, end, 0, value, fits))
        return 0;
    if (*pp - digits > 8)
        *fits = 0;
    return 1;
}

/* the first '"', '\\', tab or byte >= 0x80 from p (or end): stop() that also stops at an
 * escape (a failed line's errorVerbose is a stack trace of a few KB) */
static inline const char *
stop_or_escape(const char *p, const char *end)
{
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), tab = _mm_set1_epi8('\t'),
                  backslash = _mm_set1_epi8('\\');
    for (; end - p >= 16; p += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)p);
        int m = _mm_movemask_epi8(
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, tab)),
                         _mm_or_si128(_mm_cmpeq_epi8(v, backslash), v)));
        if (m != 0)
            return p + __builtin_ctz((unsigned)m);
    }
#endif
    while (p < end && !QUOTED_STOP[(unsigned char)*p] && *p != '\\')
        p++;
    return p;
}

/* (?:[^"\\]|\\.)*" as parser._ERROR_RE reads a value, without tabs or bytes >= 0x80 (nor
 * an escaped quote, tab or byte >= 0x80: those lines go to Python) */
static int
json_string(const char **pp, const char *end, const char **value, Py_ssize_t *len)
{
    const char *p = *pp;
    for (;;) {
        p = stop_or_escape(p, end);
        if (p >= end)
            return 0;
        if (*p == '"')
            break;
        if (*p != '\\' || ++p >= end || QUOTED_STOP[(unsigned char)*p])
            return 0;
        p++;
    }
    *value = *pp;
    *len = p - *pp;
    *pp = p + 1;
    return 1;
}

/*
 * The rest of a canceled line with a `reason` (v1.146: `, "reason": "..."}`) or of a failed
 * line (`, "error": "..."[, "errorVerbose": "..."]}`), read as parser._reasons and
 * parser._sent do: the reason label, a failed upload that is a cancel (speed too low), the
 * bytes a canceled download sent. Since no value holds an unescaped quote, the regexes
 * Python searches the whole fields with find these very keys. A DEBUG line with a reason
 * (it may be the second line of a race-lost cancel, exporter/cancels.py) and a database
 * error (its event comes from the whole text) go to Python.
 */
static __attribute__((noinline)) int
why(const char *p, const char *end, CommonLine *c)
{
    const char *v;
    Py_ssize_t n;
    if (c->level == DEBUG_LEVEL)
        return 0;
    if (c->result == 1) {
        if (!LIT(p, end, ", \"reason\": \"") || !quoted(&p, end, &v, &n) ||
            end - p != 1 || *p != '}' || memchr(v, '\\', (size_t)n) != NULL)
            return 0;
        if ((c->reason = classify(v, n)) < 0)
            return 0;
        const char *q = v, *e = v + n, *digits;
        if (c->action < N_DOWNLOADS && LIT(q, e, "downloaded size (")) {
            digits = q;
            while (q < e && is_digit(*q) && q - digits <= 8)
                q++;
            long long sent = 0;
            for (const char *d = digits; d < q; d++)
                sent = sent * 10 + (*d - '0');
            /* \d{1,8} then " bytes)"; parser._size keeps it up to MAX_PIECE_SIZE */
            c->has_sent = q > digits && q - digits <= 8 && LIT(q, e, " bytes)") &&
                          sent <= MAX_PIECE_SIZE;
            c->sent = sent;
        }
        return 1;
    }
    if (c->result != FAILED || !LIT(p, end, ", \"error\": \"") || !json_string(&p, end, &v, &n))
        return 0;
    if (LIT(p, end, ", \"errorVerbose\": \"")) {
        const char *verbose;
        Py_ssize_t verbose_len;
        if (!json_string(&p, end, &verbose, &verbose_len))
            return 0;
    }
    if (end - p != 1 || *p != '}')
        return 0;
    c->reason = classify(v, n);
    if (c->reason < 0 || c->reason == reason_database)
        return 0;
    if (c->reason == reason_speed_too_low)
        c->result = 1; /* the node cut a slow upload: a cancel */
    return 1;
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
    const char *tab = p; /* [^\t]+ of ASCII without a space, 8 bytes at a time */
    for (uint64_t v; end - tab >= 8 && (memcpy(&v, tab, 8), !word_ends_ts(v)); tab += 8)
        ;
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
        c->level = 0;
    else if (LIT(p, end, "DEBUG\t"))
        c->level = DEBUG_LEVEL;
    else if (LIT(p, end, "WARN\t"))
        c->level = 2;
    else if (LIT(p, end, "ERROR\t"))
        c->level = 3;
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
        c->result = 1; /* not the race-lost ones: "canceled (race lost ...)" */
    else if (LIT(p, end, "upload failed\t") || LIT(p, end, "download failed\t"))
        c->result = FAILED;
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
    /* ACTION_NAMES: GET, GET_AUDIT, GET_REPAIR, PUT, PUT_REPAIR */
    if (action_len == 3 && same(action, "GET", 3))
        c->action = 0;
    else if (action_len == 3 && same(action, "PUT", 3))
        c->action = 3;
    else if (action_len == 9 && same(action, "GET_AUDIT", 9))
        c->action = 1;
    else if (action_len == 10 && same(action, "GET_REPAIR", 10))
        c->action = 2;
    else if (action_len == 10 && same(action, "PUT_REPAIR", 10))
        c->action = 4;
    else
        return 0;

    int fits = 1;
    c->has_size = c->has_avail = 0;
    if (KEY(p, end, "\"Offset\": ", "\"offset\": ")) {
        /* downloads: Offset, Size, Remote Address */
        if (!number(&p, end, 1, NULL, NULL) || !LIT(p, end, ", ") ||
            !KEY(p, end, "\"Size\": ", "\"size\": ") ||
            !size_number(&p, end, &c->size, &fits) || !LIT(p, end, ", ") ||
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
            if (!size_number(&p, end, &c->size, &fits))
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
    c->reason = -1;
    c->has_sent = 0;
    if (end - p == 1 && *p == '}')
        return c->result != FAILED; /* a failure without an error: Python */
    return !c->started && why(p, end, c);
}

/* A common line behind a prefix? Out of line, so that the scan loop stays as small as it was
 * for the unprefixed line. */
static __attribute__((noinline)) int
parse_behind_prefix(const char *line, const char *end, CommonLine *c)
{
    Py_ssize_t skip = prefix_len(line, end);
    return skip > 0 && parse_common(line + skip, end, c);
}


void
grammar_init(void)
{
    QUOTED_STOP['"'] = QUOTED_STOP['\t'] = 1;
    for (int i = 0x80; i < 256; i++)
        QUOTED_STOP[i] = 1;
}

const char scan_doc[] = PyDoc_STR(
"scan(state, block, read_time, errors)\n--\n\n"
"Apply the lines of `block` (bytes, lines separated by b'\\n', no trailing newline) to\n"
"the NodeState `state`, in order. Lines other than the common ones are decoded with\n"
"`errors` and passed to state._line(line, read_time). Returns the number of lines.");

PyObject *
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

