/* The prefixes of exporter/prefixes.py in C: how long the prefix of a line is. */
#include "hotpath.h"

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
Py_ssize_t
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
