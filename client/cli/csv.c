/* csv.c: a bounded RFC 4180 CSV reader (quoted fields, doubled quotes, CRLF or LF, newlines inside
 * quotes). */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

struct csv_reader {
    FILE *in;
    char *row; /* the fields' bytes, each NUL-terminated */
    size_t row_len, row_cap;
    size_t starts[CSV_MAX_FIELDS];
    char *fields[CSV_MAX_FIELDS];
    size_t lens[CSV_MAX_FIELDS];
    long line;       /* the line the reader is on */
    long row_line;   /* the line the last row started on */
    long long bytes; /* consumed */
    const char *error;
    char error_buf[120];
};

csv_reader *csv_open(FILE *in)
{
    csv_reader *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->in = in;
    r->line = 1;
    return r;
}

void csv_close(csv_reader *r)
{
    if (!r)
        return;
    free(r->row);
    free(r);
}

long csv_line(const csv_reader *r)
{
    return r->row_line;
}

long long csv_offset(const csv_reader *r)
{
    return r->bytes;
}

const char *csv_error(const csv_reader *r)
{
    return r->error ? r->error : "no error";
}

static int fail(csv_reader *r, const char *why)
{
    snprintf(r->error_buf, sizeof r->error_buf, "line %ld: %s", r->row_line, why);
    r->error = r->error_buf;
    return -1;
}

static bool put(csv_reader *r, char c)
{
    if (r->row_len + 1 > r->row_cap) {
        if (r->row_cap >= CSV_MAX_ROW)
            return false;
        size_t cap = r->row_cap ? r->row_cap * 2 : 256;
        char *grown = realloc(r->row, cap);
        if (!grown)
            return false;
        r->row = grown;
        r->row_cap = cap;
    }
    r->row[r->row_len++] = c;
    return true;
}

static int next_char(csv_reader *r)
{
    int c = getc(r->in);
    if (c != EOF)
        r->bytes++;
    if (c == '\n')
        r->line++;
    return c;
}

int csv_next(csv_reader *r, char ***fields, size_t **lens, size_t *count)
{
    if (r->error)
        return -1;
    for (;;) {
        r->row_len = 0;
        size_t n = 0;
        r->starts[n++] = 0;
        r->row_line = r->line;
        bool quoted = false, after_quote = false, any = false;
        int c;
        for (;;) {
            c = next_char(r);
            if (c == EOF) {
                if (quoted)
                    return fail(r, "a quoted field is not closed");
                break;
            }
            any = true;
            if (quoted) {
                if (c == '"') {
                    int d = next_char(r);
                    if (d == '"') {
                        if (!put(r, '"'))
                            return fail(r, "row too long");
                        continue;
                    }
                    quoted = false;
                    after_quote = true;
                    if (d == EOF) {
                        c = EOF;
                        break;
                    }
                    c = d;
                } else {
                    if (!put(r, (char)c))
                        return fail(r, "row too long");
                    continue;
                }
            }
            if (c == '\r') {
                int d = next_char(r);
                if (d == '\n' || d == EOF)
                    break;
                return fail(r, "a carriage return outside quotes");
            }
            if (c == '\n')
                break;
            if (c == ',') {
                if (!put(r, '\0'))
                    return fail(r, "row too long");
                if (n == CSV_MAX_FIELDS)
                    return fail(r, "too many fields");
                r->starts[n++] = r->row_len;
                after_quote = false;
                continue;
            }
            if (after_quote)
                return fail(r, "characters after a closing quote");
            if (c == '"') {
                /* A quote opens a field only at its start. */
                size_t field_len = r->row_len - r->starts[n - 1];
                if (field_len != 0)
                    return fail(r, "a quote inside an unquoted field");
                quoted = true;
                continue;
            }
            if (!put(r, (char)c))
                return fail(r, "row too long");
        }
        if (!put(r, '\0'))
            return fail(r, "row too long");
        if (!any)
            return 0;
        if (n == 1 && r->row_len == 1) {
            if (c == EOF)
                return 0;
            continue; /* a blank line */
        }
        for (size_t i = 0; i < n; i++) {
            r->fields[i] = r->row + r->starts[i];
            size_t end = i + 1 < n ? r->starts[i + 1] - 1 : r->row_len - 1;
            r->lens[i] = end - r->starts[i];
        }
        *fields = r->fields;
        *lens = r->lens;
        *count = n;
        return 1;
    }
}
