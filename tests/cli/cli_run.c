/* cli_run.c: runs the built dealflow command for the end-to-end tests, polling with deadlines. */
#include "cli_run.h"

#include <jansson.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef DEALFLOW_PATH
#error "DEALFLOW_PATH must name the dealflow binary"
#endif
#ifndef CLI_DATA_DIR
#error "CLI_DATA_DIR must name the directory of the CRM data sets"
#endif

#define RUN_TIMEOUT_MS 120000

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *cli_data_dir(void)
{
    return CLI_DATA_DIR;
}

char *cli_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf)
        abort();
    while (f) {
        if (n + 1 >= cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            if (!buf)
                abort();
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        if (got == 0)
            break;
        n += got;
    }
    if (f)
        fclose(f);
    buf[n] = '\0';
    return buf;
}

int cli_count_lines(const char *text)
{
    int n = 0;
    for (const char *p = text; *p; p++)
        n += *p == '\n';
    return n;
}

static void exec_cli(const it_daemon *d, const char *const *args)
{
    setenv("DEALFLOW_API", d->api, 1);
    setenv("DEALFLOW_INGEST", d->ingest, 1);
    setenv("DEALFLOW_NOTIFY", d->notify, 1);
    unsetenv("NO_COLOR");
    int n = 0;
    while (args[n])
        n++;
    const char **argv = calloc((size_t)n + 2, sizeof *argv);
    if (!argv)
        _exit(127);
    argv[0] = DEALFLOW_PATH;
    for (int i = 0; i < n; i++)
        argv[i + 1] = args[i];
    execv(DEALFLOW_PATH, (char *const *)argv);
    _exit(127);
}

pid_t cli_spawn(const it_daemon *d, const char *out_path, const char *const *args)
{
    pid_t pid = fork();
    if (pid == 0) {
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int null = open("/dev/null", O_RDONLY);
        if (out < 0 || null < 0)
            _exit(127);
        dup2(null, 0);
        dup2(out, 1);
        exec_cli(d, args);
    }
    return pid;
}

int cli_wait(pid_t pid, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        int status;
        pid_t got = waitpid(pid, &status, WNOHANG);
        if (got == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (got < 0)
            return -1;
        if (mono_ms() >= deadline)
            return -1;
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

cli_result cli_run(const it_daemon *d, const char *input, const char *const *args)
{
    cli_result r = {.status = -1};
    char in_path[IT_PATH_MAX + 16], out_path[IT_PATH_MAX + 16], err_path[IT_PATH_MAX + 16];
    snprintf(in_path, sizeof in_path, "%s/cli.in", d->dir);
    snprintf(out_path, sizeof out_path, "%s/cli.out", d->dir);
    snprintf(err_path, sizeof err_path, "%s/cli.err", d->dir);
    FILE *f = fopen(in_path, "wb");
    if (f) {
        if (input)
            fputs(input, f);
        fclose(f);
    }
    pid_t pid = fork();
    if (pid == 0) {
        int in = open(in_path, O_RDONLY);
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (in < 0 || out < 0 || err < 0)
            _exit(127);
        dup2(in, 0);
        dup2(out, 1);
        dup2(err, 2);
        exec_cli(d, args);
    }
    if (pid > 0) {
        r.status = cli_wait(pid, RUN_TIMEOUT_MS);
        if (r.status == -1) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
    }
    r.out = cli_read_file(out_path);
    r.err = cli_read_file(err_path);
    return r;
}

void cli_result_free(cli_result *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

void cli_show(const cli_result *r)
{
    fprintf(stderr, "--- status %d\n--- stdout:\n%s--- stderr:\n%s---\n", r->status, r->out,
            r->err);
}

bool cli_has(const char *text, const char *needle)
{
    bool found = text && strstr(text, needle) != NULL;
    if (!found)
        fprintf(stderr, "not found: \"%s\" in:\n%s\n", needle, text ? text : "(null)");
    return found;
}

json_t *cli_ndjson(const char *text)
{
    json_t *all = json_array();
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len > 0) {
            json_error_t jerr;
            json_t *v = json_loadb(p, len, 0, &jerr);
            if (!v)
                fprintf(stderr, "not JSON: %.*s (%s)\n", (int)len, p, jerr.text);
            json_array_append_new(all, v ? v : json_null());
        }
        p += len + (nl ? 1 : 0);
    }
    return all;
}

void cli_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}
