/* times.c: reading times from the command line and from CSV columns, and printing them, all in UTC
 * ms. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "calendar.h"
#include "cli.h"

#define DAY_MS 86400000LL

static bool leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static bool valid_date(int64_t y, int m, int d)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1 || y > 9999 || m < 1 || m > 12 || d < 1)
        return false;
    return d <= mdays[m - 1] + (m == 2 && leap(y));
}

/* Reads exactly n digits at *p. */
static bool digits(const char **p, const char *end, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (*p >= end || !isdigit((unsigned char)**p))
            return false;
        v = v * 10 + (**p - '0');
        (*p)++;
    }
    *out = v;
    return true;
}

static bool compose(int64_t y, int mo, int d, int h, int mi, int s, int ms, int64_t *out)
{
    if (!valid_date(y, mo, d) || h > 23 || mi > 59 || s > 60 || ms > 999)
        return false;
    *out = df_days_from_civil(y, mo, d) * DAY_MS + ((int64_t)h * 3600 + mi * 60 + s) * 1000 + ms;
    return true;
}

bool time_parse(const char *text, int64_t *ms)
{
    const char *p = text, *end = text + strlen(text);
    if (p == end)
        return false;
    if (strcmp(text, "now") == 0) {
        *ms = time_now_ms();
        return true;
    }
    /* A plain integer is ms; a date never is all digits. */
    const char *q = p + (*p == '-');
    bool all_digits = q < end;
    for (const char *r = q; r < end; r++)
        all_digits = all_digits && isdigit((unsigned char)*r);
    if (all_digits) {
        char *stop;
        errno = 0;
        long long v = strtoll(text, &stop, 10);
        if (*stop != '\0' || errno == ERANGE)
            return false;
        *ms = v;
        return true;
    }
    int y, mo, d, h = 0, mi = 0, s = 0, frac = 0;
    if (!digits(&p, end, 4, &y) || p >= end || *p++ != '-' || !digits(&p, end, 2, &mo) ||
        p >= end || *p++ != '-' || !digits(&p, end, 2, &d))
        return false;
    int64_t offset_min = 0;
    if (p < end) {
        if (*p != 'T' && *p != 't' && *p != ' ')
            return false;
        p++;
        if (!digits(&p, end, 2, &h) || p >= end || *p++ != ':' || !digits(&p, end, 2, &mi))
            return false;
        if (p < end && *p == ':') {
            p++;
            if (!digits(&p, end, 2, &s))
                return false;
            if (p < end && *p == '.') {
                p++;
                int scale = 100, n = 0;
                while (p < end && isdigit((unsigned char)*p)) {
                    frac += (*p - '0') * scale;
                    scale /= 10;
                    p++;
                    n++;
                }
                if (n == 0)
                    return false;
            }
        }
        if (p < end && (*p == 'Z' || *p == 'z')) {
            p++;
        } else if (p < end && (*p == '+' || *p == '-')) {
            int sign = *p++ == '-' ? -1 : 1, oh, om;
            if (!digits(&p, end, 2, &oh) || p >= end || *p++ != ':' || !digits(&p, end, 2, &om) ||
                oh > 23 || om > 59)
                return false;
            offset_min = sign * (oh * 60 + om);
        }
    }
    if (p != end)
        return false;
    if (!compose(y, mo, d, h, mi, s, frac, ms))
        return false;
    *ms -= offset_min * 60000;
    return true;
}

bool time_parse_format(const char *text, size_t len, const char *format, int64_t *ms)
{
    const char *p = text, *end = text + len;
    int y = 1970, mo = 1, d = 1, h = 0, mi = 0, s = 0;
    for (const char *f = format; *f; f++) {
        if (*f != '%') {
            if (p >= end || *p != *f)
                return false;
            p++;
            continue;
        }
        f++;
        bool ok;
        switch (*f) {
        case 'Y':
            ok = digits(&p, end, 4, &y);
            break;
        case 'm':
            ok = digits(&p, end, 2, &mo);
            break;
        case 'd':
            ok = digits(&p, end, 2, &d);
            break;
        case 'H':
            ok = digits(&p, end, 2, &h);
            break;
        case 'M':
            ok = digits(&p, end, 2, &mi);
            break;
        case 'S':
            ok = digits(&p, end, 2, &s);
            break;
        case '%':
            ok = p < end && *p++ == '%';
            break;
        default:
            return false;
        }
        if (!ok)
            return false;
    }
    return p == end && compose(y, mo, d, h, mi, s, 0, ms);
}

const char *time_format(int64_t ms, char out[TIME_TEXT_MAX])
{
    int64_t days = ms / DAY_MS, rest = ms % DAY_MS;
    if (rest < 0) {
        rest += DAY_MS;
        days--;
    }
    int64_t y, m, d;
    df_civil_from_days(days, &y, &m, &d);
    int secs = (int)(rest / 1000), frac = (int)(rest % 1000);
    if (frac)
        snprintf(out, TIME_TEXT_MAX, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ", (long long)y, (int)m,
                 (int)d, secs / 3600, secs / 60 % 60, secs % 60, frac);
    else
        snprintf(out, TIME_TEXT_MAX, "%04lld-%02d-%02dT%02d:%02d:%02dZ", (long long)y, (int)m,
                 (int)d, secs / 3600, secs / 60 % 60, secs % 60);
    return out;
}

int64_t time_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
