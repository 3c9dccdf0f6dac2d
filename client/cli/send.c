/* send.c: the send command, and the batching appender that send and import share. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "codec.h"

#define BATCH_BYTES (512 * 1024) /* well under the daemon's default 1 MiB frame */
#define INPUT_MAX   (256u << 20)
#define TAG_MAX     160

struct sender {
    df_client *client;
    size_t batch;
    bool fire_and_forget;
    sender_result_fn fn;
    void *ctx;
    msgpack_sbuffer body; /* the events of the batch, back to back */
    size_t n;
    char **tags;
    df_append_result *results;
    size_t sent; /* events before this batch */
    size_t recorded, dups, refused, published;
};

sender *sender_new(df_client *c, size_t batch, bool fire_and_forget, sender_result_fn fn, void *ctx)
{
    sender *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->client = c;
    s->batch = batch ? batch : 1000;
    if (s->batch > DF_MAX_BATCH)
        s->batch = DF_MAX_BATCH;
    s->fire_and_forget = fire_and_forget;
    s->fn = fn;
    s->ctx = ctx;
    msgpack_sbuffer_init(&s->body);
    s->tags = calloc(s->batch, sizeof *s->tags);
    s->results = calloc(s->batch, sizeof *s->results);
    if (!s->tags || !s->results) {
        sender_free(s);
        return NULL;
    }
    return s;
}

void sender_free(sender *s)
{
    if (!s)
        return;
    for (size_t i = 0; s->tags && i < s->batch; i++)
        free(s->tags[i]);
    free(s->tags);
    free(s->results);
    msgpack_sbuffer_destroy(&s->body);
    free(s);
}

void sender_counts(const sender *s, size_t *recorded, size_t *dups, size_t *refused,
                   size_t *published)
{
    *recorded = s->recorded;
    *dups = s->dups;
    *refused = s->refused;
    *published = s->published;
}

int sender_flush(sender *s)
{
    if (s->n == 0)
        return 0;
    msgpack_sbuffer frame;
    msgpack_sbuffer_init(&frame);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &frame, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, (uint32_t)s->n);
    msgpack_sbuffer_write(&frame, s->body.data, s->body.size);
    df_error err = {0};
    int rc;
    if (s->fire_and_forget) {
        rc = df_publish(s->client, frame.data, frame.size, &err);
        if (rc == 0)
            s->published += s->n;
    } else {
        memset(s->results, 0, s->n * sizeof *s->results);
        rc = df_append(s->client, frame.data, frame.size, s->results, s->n, &err);
    }
    msgpack_sbuffer_destroy(&frame);
    if (rc < 0) {
        return cli_fail(s->fire_and_forget ? "publish" : "append", rc, &err);
    }
    for (size_t i = 0; i < s->n; i++) {
        if (!s->fire_and_forget) {
            const df_append_result *r = &s->results[i];
            if (r->error)
                s->refused++;
            else if (r->dup)
                s->dups++;
            else
                s->recorded++;
            if (s->fn)
                s->fn(s->ctx, s->sent + i, s->tags[i], r);
        }
        free(s->tags[i]);
        s->tags[i] = NULL;
    }
    s->sent += s->n;
    s->n = 0;
    s->body.size = 0;
    return 0;
}

int sender_add(sender *s, const char *event, size_t len, const char *tag)
{
    if (s->n > 0 && s->body.size + len > BATCH_BYTES) {
        int rc = sender_flush(s);
        if (rc)
            return rc;
    }
    if (msgpack_sbuffer_write(&s->body, event, len) != 0)
        return EXIT_FAILED;
    s->tags[s->n] = tag ? strndup(tag, TAG_MAX) : NULL;
    s->n++;
    if (s->n == s->batch)
        return sender_flush(s);
    return 0;
}

/* ---- send ---- */

static const char send_help[] =
    "usage: dealflow send [--file FILE] [--fire-and-forget] [-v] [EVENT...]\n"
    "\n"
    "Sends events: each EVENT argument is a JSON object or an array of them;\n"
    "without arguments they are read from --file (- for stdin) or stdin, as\n"
    "JSON or NDJSON. Numbers keep their type: 12000 is an int, 12000.0 a float.\n"
    "`at` and `close_date` may also be written as times: \"2024-01-31\" or\n"
    "\"2024-01-31T10:00:00Z\" (UTC), sent as ms.\n"
    "Events are appended over the api in batches of 1000 and each is\n"
    "acknowledged once it is on disk; a second send of the same ids reports\n"
    "duplicates and records nothing again. Refused events are printed on\n"
    "stderr (with --json: one result line per event on stdout).\n"
    "\n"
    "  --file FILE            read events from FILE (- for stdin)\n"
    "  --fire-and-forget, --no-ack\n"
    "                         publish over ingest, unacknowledged\n"
    "  -v, --verbose          print every event's result, not only refusals\n"
    "\n"
    "Exit status: 0 every event recorded or a duplicate; 1 some refused;\n"
    "2 unreadable input; 3 daemon unreachable; 4 failure.\n";

typedef struct send_state {
    bool json;
    bool verbose;
} send_state;

static void send_result(void *ctx, size_t index, const char *tag, const df_append_result *r)
{
    const send_state *st = ctx;
    if (st->json) {
        json_t *line = json_object();
        json_object_set_new(line, "index", json_integer((json_int_t)index));
        json_object_set_new(line, "id", tag ? json_string(tag) : json_null());
        if (r->error) {
            json_object_set_new(line, "error", json_string(df_error_name(r->error)));
            json_object_set_new(line, "message", json_string(r->message));
        } else {
            json_object_set_new(line, "seq", json_integer((json_int_t)r->seq));
            json_object_set_new(line, "dup", json_boolean(r->dup));
        }
        json_print_value(stdout, line);
        json_decref(line);
        return;
    }
    if (r->error)
        fprintf(stderr, "dealflow: event %zu (%s) refused: %s: %s\n", index + 1,
                tag ? tag : "no id", df_error_name(r->error), r->message);
    else if (st->verbose)
        printf("event %zu (%s): seq %llu%s\n", index + 1, tag ? tag : "no id",
               (unsigned long long)r->seq, r->dup ? " (duplicate)" : "");
}

/* Reads a whole file or stdin, bounded. NULL with errno saying why. */
static char *read_all(const char *path, size_t *len)
{
    FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!in)
        return NULL;
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            if (cap >= INPUT_MAX) {
                free(buf);
                buf = NULL;
                errno = EFBIG;
                break;
            }
            char *grown = realloc(buf, cap * 2);
            if (!grown) {
                free(buf);
                buf = NULL;
                errno = ENOMEM;
                break;
            }
            buf = grown;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, in);
        n += got;
        if (got == 0) {
            if (ferror(in)) {
                int why = errno;
                free(buf);
                buf = NULL;
                errno = why;
            }
            break;
        }
    }
    int why = errno;
    if (in != stdin)
        fclose(in);
    errno = why;
    *len = n;
    return buf;
}

/* Adds one JSON event (an object) to the sender. */
static int add_json_event(sender *s, json_t *event, const char *where)
{
    if (!json_is_object(event)) {
        fprintf(stderr, "dealflow send: %s: an event must be a JSON object\n", where);
        return EXIT_USAGE;
    }
    /* times may be written as dates for people: the wire wants ms */
    static const char *const time_keys[] = {"at", "close_date"};
    for (size_t i = 0; i < 2; i++) {
        json_t *value = json_object_get(event, time_keys[i]);
        int64_t ms;
        if (!json_is_string(value))
            continue;
        if (!time_parse(json_string_value(value), &ms)) {
            fprintf(stderr,
                    "dealflow send: %s: `%s` is \"%s\", not a time (ms, 2024-01-31 or "
                    "2024-01-31T10:00:00Z)\n",
                    where, time_keys[i], json_string_value(value));
            return EXIT_USAGE;
        }
        json_object_set_new(event, time_keys[i], json_integer((json_int_t)ms));
    }
    if (!s)
        return 0; /* the checking pass */
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    json_to_msgpack(&pk, event);
    json_t *id = json_object_get(event, "id");
    int rc = sender_add(s, buf.data, buf.size, json_is_string(id) ? json_string_value(id) : NULL);
    msgpack_sbuffer_destroy(&buf);
    return rc;
}

/* Parses text holding JSON values one after another (one document, or
 * NDJSON) and adds their events; arrays are events in a row. With s NULL it
 * only checks, so that malformed input sends nothing. */
static int add_json_text(sender *s, const char *text, size_t len, const char *source)
{
    size_t off = 0;
    while (off < len) {
        while (off < len &&
               (text[off] == ' ' || text[off] == '\n' || text[off] == '\r' || text[off] == '\t'))
            off++;
        if (off == len)
            break;
        json_error_t jerr;
        json_t *v =
            json_loadb(text + off, len - off,
                       JSON_DISABLE_EOF_CHECK | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
        if (!v) {
            fprintf(stderr, "dealflow send: %s: not JSON at byte %zu: %s\n", source,
                    off + (size_t)(jerr.position > 0 ? jerr.position - 1 : 0), jerr.text);
            return EXIT_USAGE;
        }
        off += jerr.position;
        int rc = 0;
        if (json_is_array(v)) {
            for (size_t i = 0; i < json_array_size(v) && rc == 0; i++)
                rc = add_json_event(s, json_array_get(v, i), source);
        } else {
            rc = add_json_event(s, v, source);
        }
        json_decref(v);
        if (rc)
            return rc;
    }
    return 0;
}

int cmd_send(cli *g, int argc, char **argv)
{
    const char *file = NULL, *ff = NULL, *noack = NULL, *verbose = NULL, *v = NULL;
    const cli_opt opts[] = {
        {"--file", true, &file},     {"--fire-and-forget", false, &ff},
        {"--no-ack", false, &noack}, {"--verbose", false, &verbose},
        {NULL, false, NULL},
    };
    /* -v is the one short flag of send. */
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-v") == 0) {
            v = "";
            argv[i] = "--verbose";
        }
    (void)v;
    const char **pos = calloc((size_t)argc + 1, sizeof *pos);
    if (!pos)
        return EXIT_FAILED;
    int npos = 0;
    int rc = cli_parse(g, "send", send_help, argc, argv, opts, pos, 0, argc, &npos);
    if (rc) {
        free(pos);
        return rc < 0 ? EXIT_OK : rc;
    }
    if (file && npos > 0) {
        free(pos);
        return cli_usage("send", "give events as arguments or with --file, not both");
    }
    df_client *c = cli_client(g);
    if (!c) {
        free(pos);
        return EXIT_FAILED;
    }
    send_state st = {.json = g->json, .verbose = verbose != NULL};
    bool fire = ff || noack;
    sender *s = sender_new(c, 1000, fire, send_result, &st);
    if (!s) {
        free(pos);
        return EXIT_FAILED;
    }
    char *text = NULL;
    size_t text_len = 0;
    const char *path = file ? file : "-";
    if (npos == 0) {
        text = read_all(path, &text_len);
        if (!text) {
            fprintf(stderr, "dealflow send: cannot read %s: %s\n", path,
                    errno == EFBIG ? "over 256 MiB" : strerror(errno));
            rc = EXIT_USAGE;
        }
    }
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        sender *target = pass == 0 ? NULL : s;
        if (npos > 0) {
            for (int i = 0; i < npos && rc == 0; i++) {
                char where[32];
                snprintf(where, sizeof where, "argument %d", i + 1);
                rc = add_json_text(target, pos[i], strlen(pos[i]), where);
            }
        } else {
            rc = add_json_text(target, text, text_len, strcmp(path, "-") == 0 ? "stdin" : path);
        }
    }
    free(text);
    if (rc == 0)
        rc = sender_flush(s);
    size_t recorded, dups, refused, published;
    sender_counts(s, &recorded, &dups, &refused, &published);
    sender_free(s);
    free(pos);
    if (rc)
        return rc;
    if (!g->json) {
        if (fire)
            printf("%zu event%s published over ingest (not acknowledged)\n", published,
                   published == 1 ? "" : "s");
        else
            printf("%zu recorded, %zu duplicates, %zu refused\n", recorded, dups, refused);
    }
    return refused ? EXIT_REFUSED : EXIT_OK;
}
