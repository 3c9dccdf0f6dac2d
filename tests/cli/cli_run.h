/* cli_run.h: runs the built dealflow command against a test daemon and captures what it prints. */
#ifndef DF_CLI_RUN_H
#define DF_CLI_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "harness.h"

/* What one run printed and how it ended. */
typedef struct cli_result {
    int status; /* exit status, 128 + signal when killed, -1 when it could not run */
    char *out;  /* stdout, NUL-terminated */
    char *err;  /* stderr */
} cli_result;

/* Runs dealflow with the daemon's endpoints in DEALFLOW_API/INGEST/NOTIFY,
 * stdin from input (NULL: /dev/null) and the NULL-terminated arguments.
 * Waits for it to exit (killed after a generous deadline). */
cli_result cli_run(const it_daemon *d, const char *input, const char *const *args);
/* cli_run with the arguments inline. */
#define CLI(d, input, ...) cli_run((d), (input), (const char *const[]){__VA_ARGS__, NULL})
void cli_result_free(cli_result *r);

/* Starts dealflow in the background with stdout to out_path. */
pid_t cli_spawn(const it_daemon *d, const char *out_path, const char *const *args);
/* Waits up to timeout_ms for the child; its status, or -1 when still running. */
int cli_wait(pid_t pid, int timeout_ms);
/* A file's contents (malloc'd, NUL-terminated), "" when unreadable. */
char *cli_read_file(const char *path);
/* Lines in text. */
int cli_count_lines(const char *text);
/* The dir of the test data (tests/cli/data). */
const char *cli_data_dir(void);

/* Prints what a run said, to make a failed check on it readable. */
void cli_show(const cli_result *r);
/* Whether text holds needle; says what was looked for when not. */
bool cli_has(const char *text, const char *needle);
/* Each non-empty line of text parsed as JSON (null where it is not JSON, and
 * said so). The caller decrefs the array. */
struct json_t *cli_ndjson(const char *text);
/* Writes text to path (a failed check when it cannot). */
void cli_write_file(const char *path, const char *text);

#define CHECK_STATUS(r, expected)                                                                  \
    do {                                                                                           \
        if ((r).status != (expected))                                                              \
            cli_show(&(r));                                                                        \
        CHECK_INT((r).status, (expected));                                                         \
    } while (0)

#endif
