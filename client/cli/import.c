/* import.c: the import command: NDJSON or CSV through a column mapping, in acknowledged batches,
 * safe to interrupt and run again. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "codec.h"

#define MAX_SEGMENTS   32
#define MAX_REASONS    16
#define FIELD_TEXT_MAX 4096
#define LINE_MAX_BYTES (1 << 20)
/* The flags that take a template or a column, in the order of cmd_import's names: --type is the
 * third, --skip-empty the last. */
#define MAPPED_FLAGS 17
#define TYPE_FLAG    2
#define SKIP_FLAG    (MAPPED_FLAGS - 1)

static const char import_help[] =
    "usage: dealflow import [OPTIONS] FILE\n"
    "\n"
    "Imports events from FILE (- for stdin) in acknowledged batches. Every\n"
    "event's id comes from the data, so an interrupted import can simply be\n"
    "run again: what was recorded comes back as duplicates.\n"
    "\n"
    "NDJSON (the default unless FILE ends in .csv): one event, a JSON object,\n"
    "per line.\n"
    "\n"
    "CSV (--csv, or a FILE ending in .csv): the first row names the columns;\n"
    "each row becomes one event built from templates, in which {column} is\n"
    "that column's value ({{ and }} are literal braces):\n"
    "  --id T          the event id (required): derive it from the row, e.g. 'lead-{mql_id}'\n"
    "  --deal T        the deal (required except for pipeline events)\n"
    "  --type T        stage (default), activity or update\n"
    "  --stage T       the stage of a stage event\n"
    "  --pipeline T, --owner T, --reason T, --kind T, --actor T, --note T,\n"
    "  --name T, --product T, --source T\n"
    "  --at C          when it happened: a column name or a template; read as ms,\n"
    "                  2024-01-31 or 2024-01-31T10:00:00Z unless --at-format says\n"
    "  --at-format F   strptime-like: %Y %m %d %H %M %S, e.g. %d-%m-%Y or '%d-%m-%Y %H:%M' (UTC)\n"
    "  --amount C      a column name or template; an integer stays an int, else a float\n"
    "  --close-date C  like --at\n"
    "  --skip-empty C  skip rows whose column C is empty (not counted as refused)\n"
    "  --where C=V,... only rows whose column C is one of the values (others skipped)\n"
    "  --map C=A:B,... column C's value A reads as B in templates (e.g.\n"
    "                  deal_stage=Won:won,Lost:lost); other values are kept as they are\n"
    "  --also ID:STAGE:AT  a second stage event from each row, with the first\n"
    "                  one's keys but this id, stage and at (templates; AT as --at),\n"
    "                  e.g. '{opportunity_id}-closed:{deal_stage}:close_date'; a row\n"
    "                  whose AT comes out empty makes only the first event\n"
    "A key the event's --type does not read is refused rather than dropped:\n"
    "stage reads --stage --amount --owner --source --reason; activity --kind\n"
    "--actor --note; update --amount --owner --name --product --source\n"
    "--close-date.\n"
    "A key whose template comes out empty is left out of the event; an empty\n"
    "id, deal, stage or at refuses the row.\n"
    "\n"
    "  --csv, --ndjson   the format, when the file name does not say it\n"
    "  --batch N         events per acknowledged batch (default 1000, at most 10000)\n"
    "  --no-progress     no progress bar (shown only when stderr is a terminal)\n"
    "  --dry-run         print the events as NDJSON instead of sending them; the\n"
    "                    summary goes to stderr (with --json one JSON object: rows,\n"
    "                    skipped, printed, refused, errors) and nothing is sent\n"
    "\n"
    "Prints a summary: rows, recorded, duplicates, refused and why (with --json\n"
    "one JSON object). Exit status: 0 every row recorded or a duplicate; 1 some\n"
    "refused; 2 usage or unreadable file; 3 unreachable; 4 failure; 130 interrupted.\n";

/* A template: literal text and column references. */
typedef struct segment {
    const char *text; /* literal, or NULL for a column */
    size_t len;
    size_t column;
} segment;

typedef struct template
{
    bool given;
    segment segs[MAX_SEGMENTS];
    int nsegs;
}
template;

typedef struct reason {
    char code[32];
    size_t count;
    char first[DF_MESSAGE_MAX + 64];
} reason;

typedef struct import_state {
    bool json;
    size_t rows, skipped;
    size_t local_refused;
    reason reasons[MAX_REASONS];
    int nreasons;
} import_state;

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void note_reason(import_state *st, const char *code, const char *where, const char *message)
{
    reason *r = NULL;
    for (int i = 0; i < st->nreasons; i++)
        if (strcmp(st->reasons[i].code, code) == 0)
            r = &st->reasons[i];
    if (!r && st->nreasons < MAX_REASONS) {
        r = &st->reasons[st->nreasons++];
        snprintf(r->code, sizeof r->code, "%s", code);
        snprintf(r->first, sizeof r->first, "%s: %s", where, message);
    }
    if (r)
        r->count++;
}

static void import_result(void *ctx, size_t index, const char *tag, const df_append_result *res)
{
    (void)index;
    if (res->error)
        note_reason(ctx, df_error_name(res->error), tag ? tag : "?", res->message);
}

/* Finds a column by name. */
static bool column_index(char **names, size_t *lens, size_t n, const char *name, size_t len,
                         size_t *out)
{
    for (size_t i = 0; i < n; i++)
        if (lens[i] == len && memcmp(names[i], name, len) == 0) {
            *out = i;
            return true;
        }
    return false;
}

/* Compiles text into t against the header. A bare column name is taken as
 * {name} when bare_column is set (for --at, --amount). */
static bool compile(template *t, const char *flag, const char *text, bool bare_column, char **names,
                    size_t *lens, size_t ncols)
{
    if (!text)
        return true;
    t->given = true;
    size_t col;
    if (bare_column && !strchr(text, '{') &&
        column_index(names, lens, ncols, text, strlen(text), &col)) {
        t->segs[0] = (segment){NULL, 0, col};
        t->nsegs = 1;
        return true;
    }
    const char *p = text;
    while (*p) {
        if (t->nsegs == MAX_SEGMENTS) {
            cli_usage("import", "%s: too many parts", flag);
            return false;
        }
        if (p[0] == '{' && p[1] != '{') {
            const char *close = strchr(p, '}');
            if (!close) {
                cli_usage("import", "%s: `{` without `}` in `%s`", flag, text);
                return false;
            }
            if (!column_index(names, lens, ncols, p + 1, (size_t)(close - p - 1), &col)) {
                fprintf(stderr, "dealflow import: %s: no column `%.*s`; the columns are:", flag,
                        (int)(close - p - 1), p + 1);
                for (size_t i = 0; i < ncols; i++)
                    fprintf(stderr, " %s", names[i]);
                fputc('\n', stderr);
                return false;
            }
            t->segs[t->nsegs++] = (segment){NULL, 0, col};
            p = close + 1;
            continue;
        }
        /* Literal text up to the next single brace; {{ and }} stand for one. */
        segment *s = &t->segs[t->nsegs++];
        s->text = p;
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            s->len = 1;
            p += 2;
            continue;
        }
        const char *q = p;
        while (*q && *q != '{' && !(q[0] == '}' && q[1] == '}'))
            q++;
        s->len = (size_t)(q - p);
        p = q;
    }
    return true;
}

/* Expands t for a row into out. Returns false when it would not fit. */
static bool expand(const template *t, char **fields, size_t *lens, size_t nfields, char *out,
                   size_t cap, size_t *len)
{
    size_t n = 0;
    for (int i = 0; i < t->nsegs; i++) {
        const segment *s = &t->segs[i];
        const char *src = s->text ? s->text : (s->column < nfields ? fields[s->column] : "");
        size_t l = s->text ? s->len : (s->column < nfields ? lens[s->column] : 0);
        if (n + l >= cap)
            return false;
        memcpy(out + n, src, l);
        n += l;
    }
    out[n] = '\0';
    *len = n;
    return true;
}

typedef struct mapping {
    template id, deal, type, stage, pipeline, owner, reason, kind, actor, note, name, product,
        source;
    template at, amount, close_date;
    const char *at_format;
    bool has_skip;
    size_t skip_column;
    const char *where, *map; /* C=... as given; the values after the = */
    size_t where_column, map_column;
    const char *also; /* ID:STAGE:AT as given */
} mapping;

/* Whether value[0..len) is one of the comma-separated items of list. */
static bool listed(const char *list, const char *value, size_t len)
{
    for (const char *p = list;;) {
        const char *comma = strchr(p, ',');
        size_t item = comma ? (size_t)(comma - p) : strlen(p);
        if (item == len && memcmp(p, value, len) == 0)
            return true;
        if (!comma)
            return false;
        p = comma + 1;
    }
}

/* What --map makes of value[0..len): *out and *out_len point into the map
 * when value is one of its A:B pairs' A, else are left alone. */
static void map_value(const char *map, const char *value, size_t len, const char **out,
                      size_t *out_len)
{
    for (const char *p = map;;) {
        const char *comma = strchr(p, ',');
        size_t pair = comma ? (size_t)(comma - p) : strlen(p);
        const char *colon = memchr(p, ':', pair);
        if (colon && (size_t)(colon - p) == len && memcmp(p, value, len) == 0) {
            *out = colon + 1;
            *out_len = pair - (size_t)(colon + 1 - p);
            return;
        }
        if (!comma)
            return;
        p = comma + 1;
    }
}

static bool parse_time_value(const mapping *m, const char *text, size_t len, int64_t *ms)
{
    if (m->at_format)
        return time_parse_format(text, len, m->at_format, ms);
    return time_parse(text, ms);
}

/* Packs a str key whose template is given and comes out non-empty. */
typedef struct row_ctx {
    char **fields;
    size_t *lens;
    size_t nfields;
    msgpack_packer *pk;
    int keys;
    char *error;
    size_t error_cap;
} row_ctx;

static bool add_text(row_ctx *r, const template *t, const char *key, bool required)
{
    if (!t->given) {
        if (required)
            snprintf(r->error, r->error_cap, "no --%s given", key);
        return !required;
    }
    char buf[FIELD_TEXT_MAX];
    size_t len;
    if (!expand(t, r->fields, r->lens, r->nfields, buf, sizeof buf, &len)) {
        snprintf(r->error, r->error_cap, "%s is too long", key);
        return false;
    }
    if (len == 0) {
        if (required)
            snprintf(r->error, r->error_cap, "%s is empty", key);
        return !required;
    }
    if (r->pk) {
        df_pack_cstr(r->pk, key);
        df_pack_str(r->pk, buf, len);
    }
    r->keys++;
    return true;
}

static bool add_time(row_ctx *r, const mapping *m, const template *t, const char *key)
{
    if (!t->given)
        return true;
    char buf[FIELD_TEXT_MAX];
    size_t len;
    if (!expand(t, r->fields, r->lens, r->nfields, buf, sizeof buf, &len) || len == 0) {
        snprintf(r->error, r->error_cap, "%s is empty", key);
        return false;
    }
    int64_t ms;
    if (!parse_time_value(m, buf, len, &ms)) {
        char shown[64];
        snprintf(r->error, r->error_cap, "%s `%s` does not match %s", key,
                 df_printable(buf, len, shown, sizeof shown),
                 m->at_format ? m->at_format : "ms or an ISO date");
        return false;
    }
    if (r->pk) {
        df_pack_cstr(r->pk, key);
        msgpack_pack_int64(r->pk, ms);
    }
    r->keys++;
    return true;
}

static bool add_amount(row_ctx *r, const template *t)
{
    if (!t->given)
        return true;
    char buf[FIELD_TEXT_MAX];
    size_t len;
    if (!expand(t, r->fields, r->lens, r->nfields, buf, sizeof buf, &len)) {
        snprintf(r->error, r->error_cap, "amount is too long");
        return false;
    }
    if (len == 0)
        return true;
    char *end;
    errno = 0;
    long long i = strtoll(buf, &end, 10);
    bool is_int = *end == '\0' && errno == 0;
    double f = 0;
    if (!is_int) {
        f = strtod(buf, &end);
        if (*end != '\0' || !isfinite(f)) {
            char shown[64];
            snprintf(r->error, r->error_cap, "amount `%s` is not a number",
                     df_printable(buf, len, shown, sizeof shown));
            return false;
        }
    }
    if (r->pk) {
        df_pack_cstr(r->pk, "amount");
        if (is_int)
            msgpack_pack_int64(r->pk, i);
        else
            msgpack_pack_double(r->pk, f);
    }
    r->keys++;
    return true;
}

/* Builds the event of one row into pk (two passes: count keys, then pack). */
static bool build_row(const mapping *m, row_ctx *r)
{
    char type[16];
    size_t tlen = 0;
    if (m->type.given) {
        if (!expand(&m->type, r->fields, r->lens, r->nfields, type, sizeof type, &tlen)) {
            snprintf(r->error, r->error_cap, "type is too long");
            return false;
        }
    } else {
        strcpy(type, "stage");
        tlen = 5;
    }
    bool stage = strcmp(type, "stage") == 0;
    bool ok = add_text(r, &m->id, "id", true);
    if (ok && r->pk) {
        df_pack_cstr(r->pk, "type");
        df_pack_str(r->pk, type, tlen);
    }
    r->keys++;
    ok = ok && add_text(r, &m->deal, "deal", strcmp(type, "pipeline") != 0);
    ok = ok && add_text(r, &m->pipeline, "pipeline", false);
    ok = ok && add_text(r, &m->stage, "stage", stage);
    ok = ok && add_time(r, m, &m->at, "at");
    ok = ok && add_amount(r, &m->amount);
    ok = ok && add_text(r, &m->owner, "owner", false);
    ok = ok && add_text(r, &m->reason, "reason", false);
    ok = ok && add_text(r, &m->kind, "kind", false);
    ok = ok && add_text(r, &m->actor, "actor", false);
    ok = ok && add_text(r, &m->note, "note", false);
    ok = ok && add_text(r, &m->name, "name", false);
    ok = ok && add_text(r, &m->product, "product", false);
    ok = ok && add_text(r, &m->source, "source", false);
    ok = ok && add_time(r, m, &m->close_date, "close_date");
    return ok;
}

typedef struct progress {
    bool show;
    long long total_bytes;
    int64_t start_ms, last_ms;
} progress;

static void progress_draw(progress *p, long long bytes, size_t rows, bool final)
{
    if (!p->show)
        return;
    int64_t now = time_now_ms();
    if (!final && now - p->last_ms < 100)
        return;
    p->last_ms = now;
    double secs = (double)(now - p->start_ms) / 1000.0;
    double rate = secs > 0 ? (double)rows / secs : 0;
    char bar[31];
    double frac = p->total_bytes > 0 ? (double)bytes / (double)p->total_bytes : 0;
    if (frac > 1)
        frac = 1;
    int filled = (int)(frac * 30);
    for (int i = 0; i < 30; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[30] = '\0';
    char eta[32] = "";
    if (p->total_bytes > 0 && bytes > 0 && secs > 0.2) {
        double left = secs * ((double)p->total_bytes - (double)bytes) / (double)bytes;
        snprintf(eta, sizeof eta, ", %.0fs left", left);
    }
    if (p->total_bytes > 0)
        fprintf(stderr, "\r[%s] %3.0f%% %zu rows, %.0f rows/s%s   ", bar, frac * 100, rows, rate,
                eta);
    else
        fprintf(stderr, "\r%zu rows, %.0f rows/s   ", rows, rate);
    if (final)
        fputc('\n', stderr);
}

/* Everything an import run needs. */
typedef struct run {
    bool dry_run;
    size_t printed; /* events a dry run printed */
    sender *s;
    import_state st;
    progress prog;
} run;

/* Sends one event, or prints it in a dry run. */
static int emit(run *r, const char *event, size_t len, const char *tag)
{
    if (!r->dry_run)
        return sender_add(r->s, event, len, tag);
    msgpack_zone zone;
    msgpack_object obj;
    df_error err;
    msgpack_zone_init(&zone, 1024);
    if (df_msgpack_unpack(event, len, &zone, &obj, &err) == 0 && json_print_line(stdout, &obj))
        r->printed++;
    msgpack_zone_destroy(&zone);
    return 0;
}

/* Finds the column of a --where or --map value C=...; false after a usage
 * message. *values points past the =. */
static bool column_spec(const char *flag, const char *spec, char **names, size_t *lens,
                        size_t ncols, size_t *column, const char **values)
{
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec || eq[1] == '\0') {
        cli_usage("import", "%s `%s` is not COLUMN=%s", flag, spec,
                  strcmp(flag, "--map") == 0 ? "A:B,..." : "V,...");
        return false;
    }
    if (!column_index(names, lens, ncols, spec, (size_t)(eq - spec), column)) {
        cli_usage("import", "%s: no column `%.*s`", flag, (int)(eq - spec), spec);
        return false;
    }
    *values = eq + 1;
    return true;
}

static void refuse_row(run *r, long line, const char *code, const char *message)
{
    char where[48];
    snprintf(where, sizeof where, "line %ld", line);
    r->st.local_refused++;
    note_reason(&r->st, code, where, message);
}

/* Builds the event m makes of a row and sends it; a row it cannot make is
 * refused. Returns what emit returns. */
static int emit_row(run *r, const mapping *m, char **fields, size_t *lens, size_t n, long line,
                    msgpack_sbuffer *buf)
{
    char error[DF_MESSAGE_MAX];
    row_ctx ctx = {fields, lens, n, NULL, 0, error, sizeof error};
    if (!build_row(m, &ctx)) {
        refuse_row(r, line, "bad_row", error);
        return 0;
    }
    buf->size = 0;
    msgpack_packer pk;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, (uint32_t)ctx.keys);
    ctx.pk = &pk;
    ctx.keys = 0;
    build_row(m, &ctx);
    char id[DF_MAX_ID + 1], tag[DF_MAX_ID + 48];
    size_t idlen;
    if (!expand(&m->id, fields, lens, n, id, sizeof id, &idlen))
        snprintf(id, sizeof id, "(too long)");
    snprintf(tag, sizeof tag, "line %ld (id %s)", line, id);
    return emit(r, buf->data, buf->size, tag);
}

/* Whether a row makes the --also event: its at must come out non-empty, since
 * a row without the date of a later step has not reached it. */
static bool also_wanted(const mapping *also, char **fields, size_t *lens, size_t n)
{
    char at[FIELD_TEXT_MAX];
    size_t len;
    return !expand(&also->at, fields, lens, n, at, sizeof at, &len) || len > 0;
}

/* Compiles --also ID:STAGE:AT into *also, a copy of m with that id, stage and
 * at. parts keeps the three texts, which the templates point into. Returns 0
 * or an exit status. */
static int compile_also(mapping *also, const mapping *m, char *parts[3], char **names, size_t *lens,
                        size_t ncols)
{
    const char *first = strchr(m->also, ':');
    const char *second = first ? strchr(first + 1, ':') : NULL;
    if (!second || first == m->also || second == first + 1 || second[1] == '\0') {
        return cli_usage("import", "--also `%s` is not ID:STAGE:AT", m->also);
    }
    parts[0] = strndup(m->also, (size_t)(first - m->also));
    parts[1] = strndup(first + 1, (size_t)(second - first - 1));
    parts[2] = strdup(second + 1);
    if (!parts[0] || !parts[1] || !parts[2])
        return EXIT_FAILED;
    *also = *m;
    also->id = also->stage = also->at = (template){0};
    bool ok = compile(&also->id, "--also", parts[0], false, names, lens, ncols) &&
              compile(&also->stage, "--also", parts[1], false, names, lens, ncols) &&
              compile(&also->at, "--also", parts[2], true, names, lens, ncols);
    return ok ? 0 : EXIT_USAGE;
}

static int import_csv(run *r, FILE *in, mapping *m, const char *const *flags)
{
    csv_reader *csv = csv_open(in);
    if (!csv)
        return EXIT_FAILED;
    char **fields;
    size_t *lens, n;
    int got = csv_next(csv, &fields, &lens, &n);
    if (got <= 0) {
        fprintf(stderr, "dealflow import: %s\n",
                got < 0 ? csv_error(csv) : "the file is empty: no header row");
        csv_close(csv);
        return EXIT_USAGE;
    }
    /* The header's fields are overwritten by the next row: keep a copy. */
    size_t ncols = n;
    char **names = calloc(ncols, sizeof *names);
    size_t *name_lens = calloc(ncols, sizeof *name_lens);
    bool ok = names && name_lens;
    for (size_t i = 0; ok && i < ncols; i++) {
        names[i] = strndup(fields[i], lens[i]);
        name_lens[i] = lens[i];
        ok = names[i] != NULL;
    }
    template *targets[] = {&m->id,       &m->deal,  &m->type,   &m->stage,
                           &m->pipeline, &m->owner, &m->reason, &m->kind,
                           &m->actor,    &m->note,  &m->name,   &m->product,
                           &m->source,   &m->at,    &m->amount, &m->close_date};
    _Static_assert(sizeof targets / sizeof targets[0] == SKIP_FLAG, "a template per flag");
    int rc = ok ? 0 : EXIT_FAILED;
    for (size_t i = 0; rc == 0 && i < sizeof targets / sizeof targets[0]; i++) {
        bool bare =
            targets[i] == &m->at || targets[i] == &m->amount || targets[i] == &m->close_date;
        char flag[32];
        snprintf(flag, sizeof flag, "--%s", flags[i]);
        if (!compile(targets[i], flag, flags[i + MAPPED_FLAGS], bare, names, name_lens, ncols))
            rc = EXIT_USAGE;
    }
    const char *skip = flags[SKIP_FLAG];
    if (rc == 0 && skip) {
        if (!column_index(names, name_lens, ncols, skip, strlen(skip), &m->skip_column)) {
            cli_usage("import", "--skip-empty: no column `%s`", skip);
            rc = EXIT_USAGE;
        }
        m->has_skip = true;
    }
    if (rc == 0 && m->where &&
        !column_spec("--where", m->where, names, name_lens, ncols, &m->where_column, &m->where))
        rc = EXIT_USAGE;
    if (rc == 0 && m->map &&
        !column_spec("--map", m->map, names, name_lens, ncols, &m->map_column, &m->map))
        rc = EXIT_USAGE;
    if (rc == 0 && !m->id.given)
        rc = cli_usage("import", "a CSV import needs --id, a template that derives each "
                                 "event's id from its row (e.g. 'lead-{mql_id}')");
    if (rc == 0 && !m->deal.given)
        rc = cli_usage("import", "a CSV import needs --deal");
    mapping *also = NULL;
    char *also_parts[3] = {NULL, NULL, NULL};
    if (rc == 0 && m->also) {
        also = malloc(sizeof *also);
        if (!also)
            rc = EXIT_FAILED;
        else
            rc = compile_also(also, m, also_parts, names, name_lens, ncols);
    }
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    while (rc == 0 && !interrupted) {
        got = csv_next(csv, &fields, &lens, &n);
        if (got == 0)
            break;
        if (got < 0) {
            fprintf(stderr, "dealflow import: %s\n", csv_error(csv));
            rc = EXIT_USAGE;
            break;
        }
        r->st.rows++;
        long line = csv_line(csv);
        if (m->has_skip && (m->skip_column >= n || lens[m->skip_column] == 0)) {
            r->st.skipped++;
            continue;
        }
        if (m->where && (m->where_column >= n ||
                         !listed(m->where, fields[m->where_column], lens[m->where_column]))) {
            r->st.skipped++;
            continue;
        }
        if (m->map && m->map_column < n)
            map_value(m->map, fields[m->map_column], lens[m->map_column],
                      (const char **)&fields[m->map_column], &lens[m->map_column]);
        rc = emit_row(r, m, fields, lens, n, line, &buf);
        if (rc == 0 && also && also_wanted(also, fields, lens, n))
            rc = emit_row(r, also, fields, lens, n, line, &buf);
        progress_draw(&r->prog, csv_offset(csv), r->st.rows, false);
    }
    msgpack_sbuffer_destroy(&buf);
    free(also);
    for (int i = 0; i < 3; i++)
        free(also_parts[i]);
    for (size_t i = 0; names && i < ncols; i++)
        free(names[i]);
    free(names);
    free(name_lens);
    csv_close(csv);
    return rc;
}

static int import_ndjson(run *r, FILE *in)
{
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    long long bytes = 0;
    int rc = 0;
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    while (rc == 0 && !interrupted) {
        ssize_t got = getline(&line, &cap, in);
        if (got < 0)
            break;
        lineno++;
        bytes += got;
        size_t len = (size_t)got;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        size_t start = 0;
        while (start < len && (line[start] == ' ' || line[start] == '\t'))
            start++;
        if (start == len)
            continue;
        r->st.rows++;
        if (len > LINE_MAX_BYTES) {
            refuse_row(r, lineno, "bad_json", "line too long");
            continue;
        }
        json_error_t jerr;
        json_t *v =
            json_loadb(line + start, len - start, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
        if (!v || !json_is_object(v)) {
            refuse_row(r, lineno, "bad_json", v ? "not a JSON object" : jerr.text);
            json_decref(v);
            continue;
        }
        buf.size = 0;
        msgpack_packer pk;
        msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
        json_to_msgpack(&pk, v);
        json_t *id = json_object_get(v, "id");
        char tag[DF_MAX_ID + 48];
        snprintf(tag, sizeof tag, "line %ld (id %.128s)", lineno,
                 json_is_string(id) ? json_string_value(id) : "none");
        json_decref(v);
        rc = emit(r, buf.data, buf.size, tag);
        progress_draw(&r->prog, bytes, r->st.rows, false);
    }
    msgpack_sbuffer_destroy(&buf);
    free(line);
    return rc;
}

/* The reasons rows were refused, as {code: {count, first}}. */
static json_t *reasons_json(const import_state *st)
{
    json_t *errors = json_object();
    for (int i = 0; i < st->nreasons; i++) {
        json_t *e = json_object();
        json_object_set_new(e, "count", json_integer((json_int_t)st->reasons[i].count));
        json_object_set_new(e, "first", json_string(st->reasons[i].first));
        json_object_set_new(errors, st->reasons[i].code, e);
    }
    return errors;
}

static void print_summary(const run *r, bool json, double secs)
{
    size_t recorded = 0, dups = 0, refused = 0, published = 0;
    if (r->dry_run && json) {
        /* stdout holds the events: the summary is one JSON object on stderr */
        json_t *o = json_object();
        json_object_set_new(o, "rows", json_integer((json_int_t)r->st.rows));
        json_object_set_new(o, "skipped", json_integer((json_int_t)r->st.skipped));
        json_object_set_new(o, "printed", json_integer((json_int_t)r->printed));
        json_object_set_new(o, "refused", json_integer((json_int_t)r->st.local_refused));
        json_object_set_new(o, "errors", reasons_json(&r->st));
        json_object_set_new(o, "interrupted", json_boolean(interrupted));
        json_object_set_new(o, "dry_run", json_true());
        json_print_value(stderr, o);
        json_decref(o);
        return;
    }
    if (r->dry_run) {
        /* stdout holds the events */
        fprintf(stderr, "%zu rows: %zu event%s printed, nothing sent, %zu refused", r->st.rows,
                r->printed, r->printed == 1 ? "" : "s", r->st.local_refused);
        if (r->st.skipped)
            fprintf(stderr, ", %zu skipped", r->st.skipped);
        fprintf(stderr, "\n");
        for (int i = 0; i < r->st.nreasons; i++)
            fprintf(stderr, "  %s: %zu, first: %s\n", r->st.reasons[i].code, r->st.reasons[i].count,
                    r->st.reasons[i].first);
        return;
    }
    sender_counts(r->s, &recorded, &dups, &refused, &published);
    refused += r->st.local_refused;
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "rows", json_integer((json_int_t)r->st.rows));
        json_object_set_new(o, "skipped", json_integer((json_int_t)r->st.skipped));
        json_object_set_new(o, "recorded", json_integer((json_int_t)recorded));
        json_object_set_new(o, "duplicates", json_integer((json_int_t)dups));
        json_object_set_new(o, "refused", json_integer((json_int_t)refused));
        json_object_set_new(o, "errors", reasons_json(&r->st));
        json_object_set_new(o, "interrupted", json_boolean(interrupted));
        json_print_value(stdout, o);
        json_decref(o);
        return;
    }
    printf("%zu rows: %zu recorded, %zu duplicates, %zu refused", r->st.rows, recorded, dups,
           refused);
    if (r->st.skipped)
        printf(", %zu skipped", r->st.skipped);
    printf(" (%.1f s)\n", secs);
    for (int i = 0; i < r->st.nreasons; i++)
        printf("  %s: %zu, first: %s\n", r->st.reasons[i].code, r->st.reasons[i].count,
               r->st.reasons[i].first);
}

/* Refuses a key that the event's type, when the command line says it, does
 * not read: the daemon would keep it in the log but no deal would show it.
 * names[i] is a flag, given[i + MAPPED_FLAGS] its value when given. */
static int check_keys_read(const char *const *names, const char *const *given, const char *also)
{
    static const struct {
        const char *type, *reads, *listed;
    } types[] = {
        {"stage", " deal stage amount owner source reason ",
         "--stage, --amount, --owner, --source, --reason"},
        {"activity", " deal kind actor note ", "--kind, --actor, --note"},
        {"update", " deal amount owner name product source close-date ",
         "--amount, --owner, --name, --product, --source, --close-date"},
        {"pipeline", " ", "no deal keys"},
    };
    static const char every_type[] = " id type pipeline at skip-empty ";
    const char *type = given[MAPPED_FLAGS + TYPE_FLAG] ? given[MAPPED_FLAGS + TYPE_FLAG] : "stage";
    if (strchr(type, '{'))
        return 0; /* from the rows: known only there */
    if (also && strcmp(type, "stage") != 0)
        return cli_usage("import", "--also makes stage events: the --type is `%s`", type);
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        if (strcmp(type, types[t].type) != 0)
            continue;
        for (int i = 0; i < MAPPED_FLAGS; i++) {
            char word[24];
            snprintf(word, sizeof word, " %s ", names[i]);
            if (!given[i + MAPPED_FLAGS] || strstr(every_type, word) ||
                strstr(types[t].reads, word))
                continue;
            return cli_usage("import", "--%s: a %s event does not read it (it reads %s)", names[i],
                             type, types[t].listed);
        }
    }
    return 0;
}

int cmd_import(cli *g, int argc, char **argv)
{
    /* Order matters: flags[i] names targets[i] of import_csv, flags[i + MAPPED_FLAGS] its
     * value. */
    const char *v[2 * MAPPED_FLAGS] = {0};
    static const char *const names[MAPPED_FLAGS] = {
        "id",     "deal", "type",   "stage",      "pipeline",  "owner",
        "reason", "kind", "actor",  "note",       "name",      "product",
        "source", "at",   "amount", "close-date", "skip-empty"};
    const char *csv = NULL, *ndjson = NULL, *batch = NULL, *no_progress = NULL, *at_format = NULL;
    const char *where = NULL, *map = NULL, *dry_run = NULL, *also = NULL;
    cli_opt opts[MAPPED_FLAGS + 10];
    char flagnames[MAPPED_FLAGS][24];
    for (int i = 0; i < MAPPED_FLAGS; i++) {
        snprintf(flagnames[i], sizeof flagnames[i], "--%s", names[i]);
        opts[i] = (cli_opt){flagnames[i], true, &v[i + MAPPED_FLAGS]};
        v[i] = names[i];
    }
    v[SKIP_FLAG] = NULL; /* the skip column's value goes to v[SKIP_FLAG + MAPPED_FLAGS] */
    opts[MAPPED_FLAGS + 0] = (cli_opt){"--csv", false, &csv};
    opts[MAPPED_FLAGS + 1] = (cli_opt){"--ndjson", false, &ndjson};
    opts[MAPPED_FLAGS + 2] = (cli_opt){"--batch", true, &batch};
    opts[MAPPED_FLAGS + 3] = (cli_opt){"--no-progress", false, &no_progress};
    opts[MAPPED_FLAGS + 4] = (cli_opt){"--at-format", true, &at_format};
    opts[MAPPED_FLAGS + 5] = (cli_opt){"--where", true, &where};
    opts[MAPPED_FLAGS + 6] = (cli_opt){"--map", true, &map};
    opts[MAPPED_FLAGS + 7] = (cli_opt){"--dry-run", false, &dry_run};
    opts[MAPPED_FLAGS + 8] = (cli_opt){"--also", true, &also};
    opts[MAPPED_FLAGS + 9] = (cli_opt){NULL, false, NULL};
    const char *pos[1];
    int rc = cli_parse(g, "import", import_help, argc, argv, opts, pos, 1, 1, NULL);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    v[SKIP_FLAG] = v[SKIP_FLAG + MAPPED_FLAGS];
    uint64_t batch_size = 1000;
    if (batch && (!cli_uint_opt("import", "--batch", batch, &batch_size) || batch_size == 0 ||
                  batch_size > DF_MAX_BATCH))
        return cli_usage("import", "--batch takes 1..10000");
    const char *path = pos[0];
    size_t plen = strlen(path);
    bool is_csv = csv || (!ndjson && plen > 4 && strcasecmp(path + plen - 4, ".csv") == 0);
    if (!is_csv) {
        for (int i = 0; i < MAPPED_FLAGS; i++)
            if (v[i + MAPPED_FLAGS] && i != SKIP_FLAG)
                return cli_usage("import", "--%s maps CSV columns: give --csv too", names[i]);
        if (where || map || also)
            return cli_usage("import",
                             "--where, --map and --also read CSV columns: give --csv too");
    }
    rc = check_keys_read(names, v, also);
    if (rc)
        return rc;
    FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!in) {
        fprintf(stderr, "dealflow import: cannot open %s: %s\n", path, strerror(errno));
        return EXIT_USAGE;
    }
    run r = {.dry_run = dry_run != NULL};
    r.st.json = g->json;
    df_client *c = r.dry_run ? NULL : cli_client(g);
    r.s = c ? sender_new(c, (size_t)batch_size, false, import_result, &r.st) : NULL;
    if (!r.s && !r.dry_run) {
        if (in != stdin)
            fclose(in);
        return EXIT_FAILED;
    }
    struct stat sb;
    r.prog.show = !no_progress && isatty(STDERR_FILENO);
    r.prog.total_bytes = fstat(fileno(in), &sb) == 0 && S_ISREG(sb.st_mode) ? sb.st_size : 0;
    r.prog.start_ms = time_now_ms();
    struct sigaction sa = {0}, old_int, old_term;
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    mapping m = {.at_format = at_format, .where = where, .map = map, .also = also};
    if (is_csv)
        rc = import_csv(&r, in, &m, v);
    else
        rc = import_ndjson(&r, in);
    if (in != stdin)
        fclose(in);
    if ((rc == 0 || rc == EXIT_REFUSED) && !r.dry_run)
        rc = sender_flush(r.s);
    progress_draw(&r.prog, r.prog.total_bytes, r.st.rows, true);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (rc == EXIT_USAGE && r.st.rows == 0) {
        sender_free(r.s);
        return rc;
    }
    print_summary(&r, g->json, (double)(time_now_ms() - r.prog.start_ms) / 1000.0);
    size_t recorded = 0, dups = 0, refused = 0, published = 0;
    if (r.s)
        sender_counts(r.s, &recorded, &dups, &refused, &published);
    sender_free(r.s);
    if (interrupted) {
        fprintf(stderr, "dealflow import: interrupted; every batch above was acknowledged: run "
                        "the same import again to finish (recorded events come back as "
                        "duplicates)\n");
        return EXIT_INTERRUPTED;
    }
    if (rc)
        return rc;
    return refused + r.st.local_refused ? EXIT_REFUSED : EXIT_OK;
}
