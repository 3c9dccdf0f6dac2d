/* cli.h: what the modules of the dealflow command share: exit codes, global options, and the pure
 * helpers (JSON, CSV, times, rendering). */
#ifndef DF_CLI_H
#define DF_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <msgpack.h>

#include "dealflow.h"

/* Exit statuses scripts can rely on (dealflow.1 documents them). */
enum {
    EXIT_OK = 0,          /* everything asked was done */
    EXIT_REFUSED = 1,     /* something was refused or not found */
    EXIT_USAGE = 2,       /* bad command line or unreadable input */
    EXIT_UNREACHABLE = 3, /* no reply from the daemon */
    EXIT_FAILED = 4,      /* the daemon or the command failed (internal, unavailable, memory) */
    EXIT_INTERRUPTED = 130,
};

/* ---- times.c ---- */

#define TIME_TEXT_MAX 40

/* Parses a time given on the command line: an integer of ms since the epoch,
 * a date (2024-01-31, midnight UTC), or a date and time
 * (2024-01-31T10:00[:00[.000]] followed by Z, +HH:MM or -HH:MM; a space may
 * stand for the T; no zone means UTC). Returns false when it is none of these. */
bool time_parse(const char *text, int64_t *ms);
/* Parses text with a strftime-like format of %Y %m %d %H %M %S %% and literal
 * characters, as UTC. Returns false when text does not match it whole. */
bool time_parse_format(const char *text, size_t len, const char *format, int64_t *ms);
/* Writes ms as 2024-01-31T10:00:00Z (with .mmm when ms has a fraction) into out. */
const char *time_format(int64_t ms, char out[TIME_TEXT_MAX]);
/* Milliseconds since the epoch, now. */
int64_t time_now_ms(void);

/* ---- json.c: JSON <-> msgpack ---- */

/* Packs a JSON value: integers as msgpack ints, reals as float64, strings as
 * str, null as nil. */
void json_to_msgpack(msgpack_packer *pk, const json_t *value);
/* The JSON form of a msgpack object: ints stay ints (a uint beyond int64 as a
 * decimal string), floats stay reals (non-finite ones as null), bin and ext
 * as base64 strings, str bytes that are not UTF-8 replaced by U+FFFD.
 * Returns a new reference, NULL only when memory ran out. */
json_t *json_from_msgpack(const msgpack_object *o);
/* Base64 (RFC 4648, padded) of data[0..len), a malloc'd NUL-terminated string. */
char *base64_encode(const char *data, size_t len);
/* Prints o as one line of compact JSON and a newline. Returns false on error. */
bool json_print_line(FILE *out, const msgpack_object *o);
/* Prints a JSON value as one compact line. */
bool json_print_value(FILE *out, json_t *value);

/* ---- csv.c: RFC 4180 CSV ---- */

#define CSV_MAX_FIELDS 1024
#define CSV_MAX_ROW    (1 << 20) /* bytes of one row */

typedef struct csv_reader csv_reader;

/* Reads CSV from in (not closed by csv_close). */
csv_reader *csv_open(FILE *in);
/* Reads the next row: 1 with its fields (valid until the next call; each
 * NUL-terminated, lens without it), 0 at the end, -1 on malformed input or a
 * row over the limits (csv_error says why). Blank lines are skipped. */
int csv_next(csv_reader *r, char ***fields, size_t **lens, size_t *count);
/* The line number the last row started on (1-based). */
long csv_line(const csv_reader *r);
const char *csv_error(const csv_reader *r);
/* Bytes consumed so far. */
long long csv_offset(const csv_reader *r);
void csv_close(csv_reader *r);

/* ---- board.c: rendering board and metrics replies ---- */

typedef struct render_opts {
    bool colour;
    int bar_width;
} render_opts;

/* Prints a board reply as a table. Returns 0, or -1 when the reply is not
 * the shape of a board reply. */
int board_render(FILE *out, const msgpack_object *reply, const char *pipeline,
                 const render_opts *opt);
/* Prints a metrics reply as a table. Returns 0, or -1 when it is not one. */
int metrics_render(FILE *out, const msgpack_object *reply, const char *pipeline);
/* The lost-from and loss-reason tables of a metrics reply. -1 when it is not one. */
int losses_render(FILE *out, const msgpack_object *reply, const char *pipeline);

/* ---- outlook.c: rendering forecast, calibration and the trend of metrics --by ---- */

int forecast_render(FILE *out, const msgpack_object *reply, const char *pipeline);
int calibration_render(FILE *out, const msgpack_object *reply, const char *pipeline);
/* The `series` of a metrics reply, a row per period. */
int series_render(FILE *out, const msgpack_object *reply);

/* ---- msgpack reading helpers (json.c) ---- */

const msgpack_object *mp_get(const msgpack_object *map, const char *key);
/* A NUL-terminated copy in buf (cut to fit); "" when absent or not a str. */
const char *mp_str(const msgpack_object *map, const char *key, char *buf, size_t cap);
bool mp_int(const msgpack_object *map, const char *key, int64_t *out);
/* An int or float as a double; false when absent or not a number. */
bool mp_num(const msgpack_object *map, const char *key, double *out);
/* The same, 0 when absent or of another type. */
int64_t mp_int_or_zero(const msgpack_object *map, const char *key);
double mp_num_or_zero(const msgpack_object *map, const char *key);
/* A map key as mp_str gives a value: cut to fit, control bytes as '?'. */
const char *mp_key_name(const msgpack_object *key, char *buf, size_t cap);
/* Formats a number (int or float) or "-" for nil / absent. */
const char *mp_num_text(const msgpack_object *o, char *buf, size_t cap);

/* ---- main.c: global options and the client ---- */

typedef struct cli {
    const char *api, *ingest, *notify;
    const char *server_key, *key_file; /* NULL: the environment's */
    bool json;
    int timeout_ms;
    int attempts;
    df_client *client; /* opened on first use */
} cli;

/* Opens the client on first use; NULL (and the reason on stderr) on failure. */
df_client *cli_client(cli *g);
/* Prints "dealflow: what: message" on stderr and returns the exit status
 * that fits the error code (and whether a reply came). */
int cli_fail(const char *what, int code, const df_error *err);
/* Judges what a library call made with cli_client(g) returned: 0 for
 * rc >= 0, else the exit status after printing why. When the client could
 * not be opened, the call was given NULL and refused it; cli_client said why
 * already. */
int cli_check(cli *g, const char *what, int rc, const df_error *err);

/* The reply of a single-reply library call (df_get_deal, df_ping, ...). */
typedef struct cli_reply {
    df_bytes bytes; /* where the call puts the reply */
    df_error err;   /* and why it failed */
    msgpack_zone zone;
    msgpack_object obj; /* the reply unpacked, in zone */
} cli_reply;

void cli_reply_init(cli_reply *r);
/* Takes what the call that filled r->bytes and r->err returned: 0 with
 * r->obj the reply, or the exit status after printing why. */
int cli_reply_take(cli *g, const char *what, int rc, cli_reply *r);
void cli_reply_free(cli_reply *r);
/* Usage error: prints the message and a hint, returns EXIT_USAGE. */
int cli_usage(const char *command, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Command-line options of one command. */
typedef struct cli_opt {
    const char *name; /* "--after" */
    bool has_value;
    const char **value; /* set to the value (or "" for a flag) */
} cli_opt;

/* Parses argv[1..argc) of a command: its options, the global ones, and
 * positionals (at most max_pos, into pos). Prints help and returns -1 for
 * --help (caller exits 0); returns EXIT_USAGE after a message on error, 0 on
 * success. */
int cli_parse(cli *g, const char *command, const char *help, int argc, char **argv,
              const cli_opt *opts, const char **pos, int min_pos, int max_pos, int *npos);

/* Parses a time option into *ms; false (after a message) when malformed. */
bool cli_time_opt(const char *command, const char *flag, const char *value, int64_t *ms);
/* Parses an unsigned integer option. */
bool cli_uint_opt(const char *command, const char *flag, const char *value, uint64_t *out);

/* ---- the commands ---- */

typedef int (*cli_command_fn)(cli *g, int argc, char **argv);

int cmd_send(cli *g, int argc, char **argv);
int cmd_import(cli *g, int argc, char **argv);
int cmd_tail(cli *g, int argc, char **argv);
int cmd_deal(cli *g, int argc, char **argv);
int cmd_history(cli *g, int argc, char **argv);
int cmd_list(cli *g, int argc, char **argv);
int cmd_replay(cli *g, int argc, char **argv);
int cmd_stats(cli *g, int argc, char **argv);
int cmd_rejected(cli *g, int argc, char **argv);
int cmd_ping(cli *g, int argc, char **argv);
int cmd_board(cli *g, int argc, char **argv);
int cmd_metrics(cli *g, int argc, char **argv);
int cmd_losses(cli *g, int argc, char **argv);
int cmd_forecast(cli *g, int argc, char **argv);
int cmd_calibration(cli *g, int argc, char **argv);

/* ---- figures.c: requests the library's structs do not carry ---- */

/* The keys of a board, metrics or list request; NULL (false): not sent. */
typedef struct cli_figures_args {
    const char *pipeline, *owner, *product, *source, *stage, *status;
    const int64_t *now, *from, *to;
    const char *by;            /* metrics, forecast: week, month or quarter */
    bool stale;                /* list: only stale deals */
    const uint64_t *idle_days; /* list */
} cli_figures_args;
/* Sends op with these keys; as cli_reply_take. */
int cli_figures_request(cli *g, const char *op, const cli_figures_args *a, cli_reply *r);
/* A list with these filters. */
int cli_list_open(cli *g, const cli_figures_args *a, df_iter **it, df_error *err);
int cmd_keygen(cli *g, int argc, char **argv);
int cmd_pipeline(cli *g, int argc, char **argv);
int cmd_redact(cli *g, int argc, char **argv);

/* After a pipeline was not found: says on stderr which pipelines are
 * defined (nothing when the daemon does not say). */
void cli_pipeline_hint(cli *g);

/* ---- send.c: batched, acknowledged appends, shared by send and import ---- */

typedef struct sender sender;

/* Called for each event's outcome; index counts events from 0 across
 * batches, tag is what sender_add was given. */
typedef void (*sender_result_fn)(void *ctx, size_t index, const char *tag,
                                 const df_append_result *result);

/* Batches of at most batch events (and about 512 KiB), appended with
 * df_append (or published over ingest when fire_and_forget). */
sender *sender_new(df_client *c, size_t batch, bool fire_and_forget, sender_result_fn fn,
                   void *ctx);
/* Adds one event map (msgpack bytes); sends a batch when one is full.
 * tag (copied, may be NULL) identifies the event in results. Returns 0 or an
 * exit status after printing why the batch failed as a whole. */
int sender_add(sender *s, const char *event, size_t len, const char *tag);
/* Sends what is left. Returns 0 or an exit status. */
int sender_flush(sender *s);
/* Counts so far. */
void sender_counts(const sender *s, size_t *recorded, size_t *dups, size_t *refused,
                   size_t *published);
void sender_free(sender *s);

#endif
