/*
 * A log timestamp in seconds since the epoch, in C, for the shape storagenodes write
 * (2024-03-13T09:00:00Z, with an optional fraction of up to 6 digits and a Z or +HH:MM zone):
 * what datetime.fromisoformat(ts).timestamp() gives (NodeState's TimestampCache). Any
 * other shape, a field out of range, or a time so far from 1970 that its microseconds do
 * not fit a double exactly, is left to Python (*ok = 0). tests/test_hotpath.py compares
 * both on valid, invalid and random timestamps.
 */
#include "hotpath.h"

static int
digits(const char *p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 1;
}

/* days from 1970-01-01 to y-m-d (proleptic Gregorian; Howard Hinnant's days_from_civil) */
static long long
days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* 1 and *value, or 0: Python must read it */
int
log_time(const char *ts, Py_ssize_t n, double *value)
{
    int y, mo, d, h, mi, s, us = 0, zh = 0, zm = 0;
    if (n < 20 || ts[4] != '-' || ts[7] != '-' || ts[10] != 'T' || ts[13] != ':' ||
        ts[16] != ':' || !digits(ts, 4, &y) || !digits(ts + 5, 2, &mo) ||
        !digits(ts + 8, 2, &d) || !digits(ts + 11, 2, &h) || !digits(ts + 14, 2, &mi) ||
        !digits(ts + 17, 2, &s))
        return 0;
    const char *p = ts + 19, *end = ts + n;
    if (*p == '.') {
        int k = 0;
        for (p++; p < end && *p >= '0' && *p <= '9' && k < 7; p++, k++)
            us = us * 10 + (*p - '0');
        if (k == 0 || k > 6)
            return 0;
        for (; k < 6; k++)
            us *= 10;
    }
    int sign = 0;
    if (end - p == 1 && *p == 'Z')
        ;
    else if (end - p == 6 && (*p == '+' || *p == '-') && p[3] == ':' &&
             digits(p + 1, 2, &zh) && digits(p + 4, 2, &zm) && zh <= 23 && zm <= 59)
        sign = *p == '+' ? 1 : -1;
    else
        return 0;
    static const int month_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > month_days[mo - 1] + (mo == 2 && leap) ||
        h > 23 || mi > 59 || s > 59)
        return 0;
    long long secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s -
                     sign * (zh * 3600 + zm * 60);
    long long total_us = secs * 1000000 + us;
    if (total_us >= (1LL << 53) || total_us <= -(1LL << 53))
        return 0; /* (double)total_us would round: Python divides exactly */
    *value = (double)total_us / 1e6; /* timedelta.total_seconds(): microseconds / 10**6 */
    return 1;
}

const char timestamp_doc[] = PyDoc_STR(
    "timestamp(ts)\n--\n\nThe scan's reading of a log timestamp (datetime.fromisoformat(ts)."
    "timestamp()), None when it leaves it to Python.");

PyObject *
py_timestamp(PyObject *module, PyObject *arg)
{
    const char *s;
    Py_ssize_t n;
    int ascii = ascii_arg(arg, "timestamp", &s, &n);
    if (ascii < 0)
        return NULL;
    double v;
    if (!ascii || !log_time(s, n, &v))
        Py_RETURN_NONE;
    return PyFloat_FromDouble(v);
}
