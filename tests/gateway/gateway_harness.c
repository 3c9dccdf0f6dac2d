/* gateway_harness.c: the built dealflow-gateway as the tests run it: its config, its process on
 * a free port with deadlines, and HTTP requests to it over libcurl. */
#include "gateway_harness.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#ifndef GATEWAY_PATH
#error "GATEWAY_PATH must name the dealflow-gateway binary"
#endif

/* How often a wait asks /healthz again. */
#define READY_POLL_MS 50
#define MAX_ARGS      32

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

bool gw_init(gw_gateway *g, const char *dir, const char *name)
{
    memset(g, 0, sizeof *g);
    char ports[3][IT_ENDPOINT_MAX];
    if (!it_pick_ports(ports))
        return false;
    g->port = (unsigned short)atoi(it_port(ports[0]));
    snprintf(g->listen, sizeof g->listen, "127.0.0.1:%u", (unsigned)g->port);
    snprintf(g->base_url, sizeof g->base_url, "http://%s", g->listen);
    snprintf(g->config, sizeof g->config, "%s/%s.json", dir, name);
    snprintf(g->process.log, sizeof g->process.log, "%s/%s.log", dir, name);
    return true;
}

bool gw_write_config(const gw_gateway *g, const char *format, ...)
{
    FILE *f = fopen(g->config, "w");
    if (!f)
        return false;
    va_list ap;
    va_start(ap, format);
    bool ok = vfprintf(f, format, ap) >= 0;
    va_end(ap);
    return fclose(f) == 0 && ok;
}

bool gw_spawn(gw_gateway *g, const char *const *args)
{
    const char *argv[MAX_ARGS + 6] = {GATEWAY_PATH, "--config", g->config, "--listen", g->listen};
    int argc = 5;
    for (int i = 0; args && args[i]; i++) {
        if (i == MAX_ARGS) {
            fprintf(stderr, "gw_spawn: more than %d flags\n", MAX_ARGS);
            return false;
        }
        argv[argc++] = args[i];
    }
    argv[argc] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        FILE *log = freopen(g->process.log, "a", stderr);
        (void)log;
        execv(GATEWAY_PATH, (char *const *)argv);
        _exit(127);
    }
    if (pid < 0) {
        perror("fork");
        return false;
    }
    g->process.pid = pid;
    return true;
}

bool gw_running(const gw_gateway *g)
{
    siginfo_t info = {0};
    return g->process.pid > 0 &&
           waitid(P_PID, (id_t)g->process.pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
           info.si_pid == 0;
}

bool gw_wait_ready(gw_gateway *g)
{
    int64_t deadline = it_mono_ms() + GW_WAIT_MS;
    while (gw_running(g) && it_mono_ms() < deadline) {
        gw_http h = gw_request(g, "GET", "/healthz", NULL, NULL);
        long status = h.status;
        gw_http_free(&h);
        if (status == 200)
            return true;
        pause_ms(READY_POLL_MS);
    }
    fprintf(stderr, "the gateway did not answer /healthz:\n");
    gw_print_log(g);
    return false;
}

bool gw_start(gw_gateway *g, const char *const *args)
{
    return gw_spawn(g, args) && gw_wait_ready(g);
}

int gw_wait_exit(gw_gateway *g, int timeout_ms)
{
    return it_wait_exit(&g->process, timeout_ms);
}

int gw_stop(gw_gateway *g)
{
    if (g->process.pid <= 0)
        return -1;
    kill(g->process.pid, SIGTERM);
    int code = gw_wait_exit(g, GW_WAIT_MS);
    if (code < 0 && g->process.pid > 0) {
        fprintf(stderr, "the gateway still runs %d ms after SIGTERM\n", GW_WAIT_MS);
        kill(g->process.pid, SIGKILL);
        gw_wait_exit(g, GW_WAIT_MS);
    }
    if (code != 0)
        gw_print_log(g);
    return code;
}

void gw_print_log(const gw_gateway *g)
{
    it_print_log(&g->process);
}

bool gw_log_contains(const gw_gateway *g, const char *needle)
{
    return it_log_contains(&g->process, needle);
}

/* ---- HTTP ---- */

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
    gw_http *h = ctx;
    char *grown = realloc(h->text, h->len + size * n + 1);
    if (!grown)
        return 0;
    h->text = grown;
    memcpy(h->text + h->len, data, size * n);
    h->len += size * n;
    h->text[h->len] = '\0';
    return size * n;
}

/* Keeps each header line without its CRLF; the blank line that ends them is dropped. */
static size_t on_header(char *line, size_t size, size_t n, void *ctx)
{
    gw_http *h = ctx;
    size_t len = size * n, kept = strcspn(line, "\r\n");
    if (kept > len)
        kept = len;
    if (kept == 0)
        return len;
    char *grown = realloc(h->head, h->head_len + kept + 1);
    if (!grown)
        return 0;
    h->head = grown;
    memcpy(h->head + h->head_len, line, kept);
    h->head_len += kept;
    h->head[h->head_len++] = '\0';
    return len;
}

gw_http gw_request(const gw_gateway *g, const char *method, const char *path,
                   const char *const *headers, const char *body)
{
    gw_http h = {0};
    CURL *c = curl_easy_init();
    if (!c)
        return h;
    char url[512];
    snprintf(url, sizeof url, "%s%s", g->base_url, path);
    struct curl_slist *list = curl_slist_append(NULL, "Expect:");
    for (size_t i = 0; headers && headers[i]; i++)
        list = curl_slist_append(list, headers[i]);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &h);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)GW_WAIT_MS);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &h.status);
    curl_slist_free_all(list);
    curl_easy_cleanup(c);
    if (h.text)
        h.json = json_loadb(h.text, h.len, 0, NULL);
    if (g->on_answer)
        g->on_answer(path, h.status);
    return h;
}

gw_http gw_request_as(const gw_gateway *g, const char *method, const char *path, const char *token,
                      const char *body)
{
    char auth[256];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token ? token : "");
    const char *const headers[] = {auth, NULL};
    return gw_request(g, method, path, token ? headers : NULL, body);
}

const char *gw_header(const gw_http *h, const char *name)
{
    size_t name_len = strlen(name);
    for (size_t at = 0; at < h->head_len; at += strlen(h->head + at) + 1) {
        const char *line = h->head + at;
        if (strncasecmp(line, name, name_len) == 0 && line[name_len] == ':')
            return line + name_len + 1 + strspn(line + name_len + 1, " \t");
    }
    return NULL;
}

void gw_http_free(gw_http *h)
{
    json_decref(h->json);
    free(h->text);
    free(h->head);
    *h = (gw_http){0};
}

const char *gw_error_of(const gw_http *h)
{
    return json_string_value(json_object_get(h->json, "error"));
}

long long gw_result_seq(const gw_http *h, size_t i, int *dup)
{
    json_t *r = json_array_get(json_object_get(h->json, "results"), i);
    *dup = json_is_true(json_object_get(r, "dup"));
    json_t *seq = json_object_get(r, "seq");
    return json_is_integer(seq) ? (long long)json_integer_value(seq) : -1;
}
