/* harness_process.c: runs dealflowd as a child process: its temp dir, free ports, start,
 * stop, crash and restart, and its log. */
#include "harness_process.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "harness_read.h"
#include "harness_wire.h"

#ifndef DEALFLOWD_PATH
#error "DEALFLOWD_PATH must name the dealflowd binary"
#endif

/* Deadlines, generous for a sanitizer build. */
#define READY_TIMEOUT_MS 30000
#define READY_PING_MS    250
#define STOP_TIMEOUT_MS  30000
#define MAX_LOG_READ     (4 << 20)

/* Binds throwaway sockets of a private context to port 0; terminating that
 * context closes their listeners before the ports are handed out. */
bool it_pick_ports(char endpoints[3][IT_ENDPOINT_MAX])
{
    void *ctx = zmq_ctx_new();
    void *sockets[3] = {NULL, NULL, NULL};
    bool ok = true;
    for (int i = 0; i < 3 && ok; i++) {
        sockets[i] = zmq_socket(ctx, ZMQ_PULL);
        size_t size = IT_ENDPOINT_MAX;
        ok = sockets[i] && zmq_bind(sockets[i], "tcp://127.0.0.1:*") == 0 &&
             zmq_getsockopt(sockets[i], ZMQ_LAST_ENDPOINT, endpoints[i], &size) == 0;
    }
    int error = ok ? 0 : zmq_errno();
    for (int i = 0; i < 3; i++) {
        if (sockets[i])
            zmq_close(sockets[i]);
    }
    zmq_ctx_term(ctx);
    errno = error;
    return ok;
}

bool it_init(it_daemon *d, const char *const *extra)
{
    memset(d, 0, sizeof *d);
    snprintf(d->dir, sizeof d->dir, "/tmp/dealflow-it-XXXXXX");
    if (!mkdtemp(d->dir)) {
        it_fail("mkdtemp: %s", strerror(errno));
        d->dir[0] = '\0';
        return false;
    }
    snprintf(d->data, sizeof d->data, "%s/data", d->dir);
    snprintf(d->log, sizeof d->log, "%s/daemon.log", d->dir);
    for (int i = 0; extra && extra[i] && d->nextra < IT_MAX_EXTRA; i++)
        d->extra[d->nextra++] = extra[i];
    char endpoints[3][IT_ENDPOINT_MAX];
    if (!it_pick_ports(endpoints)) {
        it_fail("picking free ports: %s", zmq_strerror(errno));
        return false;
    }
    memcpy(d->ingest, endpoints[0], IT_ENDPOINT_MAX);
    memcpy(d->api, endpoints[1], IT_ENDPOINT_MAX);
    memcpy(d->notify, endpoints[2], IT_ENDPOINT_MAX);
    return true;
}

pid_t it_exec_daemon(const char *path, const char *data, const char *const endpoints[3],
                     const char *const *extra, int nextra, const char *log, bool truncate_log)
{
    return it_exec_daemon_nofile(path, data, endpoints, extra, nextra, log, truncate_log, 0);
}

pid_t it_exec_daemon_nofile(const char *path, const char *data, const char *const endpoints[3],
                            const char *const *extra, int nextra, const char *log,
                            bool truncate_log, long nofile)
{
    const char *argv[12 + IT_MAX_ARGS];
    int argc = 0;
    argv[argc++] = path;
    argv[argc++] = "--data";
    argv[argc++] = data;
    argv[argc++] = "--ingest";
    argv[argc++] = endpoints[0];
    argv[argc++] = "--api";
    argv[argc++] = endpoints[1];
    argv[argc++] = "--notify";
    argv[argc++] = endpoints[2];
    for (int i = 0; i < nextra && i < IT_MAX_ARGS; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;

    long max_fd = sysconf(_SC_OPEN_MAX);
    if (max_fd < 0 || max_fd > 4096)
        max_fd = 4096;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    int log_fd = open(log, O_WRONLY | O_CREAT | (truncate_log ? O_TRUNC : O_APPEND), 0644);
    int null = open("/dev/null", O_RDONLY);
    if (log_fd >= 0) {
        dup2(log_fd, STDOUT_FILENO);
        dup2(log_fd, STDERR_FILENO);
    }
    if (null >= 0)
        dup2(null, STDIN_FILENO);
    for (int fd = 3; fd < max_fd; fd++)
        close(fd);
    struct rlimit rl;
    if (nofile > 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = (rlim_t)nofile < rl.rlim_max ? (rlim_t)nofile : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    execv(path, (char *const *)argv);
    fprintf(stderr, "exec %s: %s\n", path, strerror(errno));
    _exit(127);
}

bool it_spawn(it_daemon *d)
{
    const char *const endpoints[3] = {d->ingest, d->api, d->notify};
    pid_t pid = it_exec_daemon_nofile(DEALFLOWD_PATH, d->data, endpoints, d->extra, d->nextra,
                                      d->log, false, d->nofile);
    if (pid < 0) {
        it_fail("fork: %s", strerror(errno));
        return false;
    }
    d->pid = pid;
    return true;
}

const char *it_describe_status(int status, char *buf, size_t size)
{
    if (WIFEXITED(status))
        snprintf(buf, size, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, size, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, size, "status %d", status);
    return buf;
}

static int exit_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

int it_wait_exit(it_daemon *d, int timeout_ms)
{
    if (d->pid <= 0)
        return -1;
    int64_t deadline = it_mono_ms() + timeout_ms;
    for (;;) {
        int status = 0;
        pid_t rc = waitpid(d->pid, &status, WNOHANG);
        if (rc == d->pid) {
            d->pid = 0;
            return exit_code(status);
        }
        if (rc < 0 && errno != EINTR) {
            it_fail("waitpid: %s", strerror(errno));
            d->pid = 0;
            return -1;
        }
        if (it_mono_ms() >= deadline)
            return -1;
        it_pause_briefly();
    }
}

bool it_wait_ready(it_daemon *d)
{
    int64_t deadline = it_mono_ms() + READY_TIMEOUT_MS;
    while (it_mono_ms() < deadline) {
        int status = 0;
        if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
            char why[128];
            d->pid = 0;
            it_fail("dealflowd ended before answering (%s)",
                    it_describe_status(status, why, sizeof why));
            it_print_log(d);
            return false;
        }
        if (it_poll_int(d, "{op: ping}", "last_seq", READY_PING_MS, true) != IT_NONE)
            return true;
    }
    it_fail("dealflowd did not answer ping within %d ms", READY_TIMEOUT_MS);
    it_print_log(d);
    return false;
}

bool it_start(it_daemon *d, const char *const *extra)
{
    return it_init(d, extra) && it_spawn(d) && it_wait_ready(d);
}

int it_stop(it_daemon *d)
{
    if (d->pid <= 0)
        return -1;
    it_push_close(d, 0);
    kill(d->pid, SIGTERM);
    int code = it_wait_exit(d, STOP_TIMEOUT_MS);
    if (code < 0 && d->pid > 0) {
        it_fail("dealflowd still running %d ms after SIGTERM", STOP_TIMEOUT_MS);
        kill(d->pid, SIGKILL);
        it_wait_exit(d, STOP_TIMEOUT_MS);
    }
    if (code != 0)
        it_print_log(d);
    return code;
}

void it_crash(it_daemon *d)
{
    if (d->pid <= 0)
        return;
    kill(d->pid, SIGKILL);
    if (it_wait_exit(d, STOP_TIMEOUT_MS) < 0)
        it_fail("dealflowd survived SIGKILL");
    it_push_close(d, 0);
    it_close(d->dealer);
    d->dealer = NULL;
}

bool it_restart(it_daemon *d)
{
    if (d->pid > 0) {
        it_fail("it_restart: the daemon is still running");
        return false;
    }
    return it_spawn(d) && it_wait_ready(d);
}

void it_remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *dir = opendir(path);
        struct dirent *entry;
        while (dir && (entry = readdir(dir)) != NULL) {
            if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
                continue;
            char child[IT_PATH_MAX * 2];
            snprintf(child, sizeof child, "%s/%s", path, entry->d_name);
            it_remove_tree(child);
        }
        if (dir)
            closedir(dir);
        rmdir(path);
    } else {
        unlink(path);
    }
}

void it_cleanup(it_daemon *d)
{
    if (d->pid > 0) {
        int code = it_stop(d);
        if (code != 0)
            fprintf(stderr, "harness: dealflowd ended with %d at cleanup\n", code);
    }
    it_push_close(d, 0);
    it_close(d->dealer);
    d->dealer = NULL;
    if (d->dir[0])
        it_remove_tree(d->dir);
    d->dir[0] = '\0';
}

static char *read_log(const it_daemon *d)
{
    FILE *f = fopen(d->log, "rb");
    if (!f)
        return NULL;
    char *text = malloc(MAX_LOG_READ + 1);
    size_t n = fread(text, 1, MAX_LOG_READ, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

void it_print_log(const it_daemon *d)
{
    char *text = read_log(d);
    fprintf(stderr, "---- %s ----\n%s---- end of log ----\n", d->log, text ? text : "(none)\n");
    free(text);
}

bool it_log_contains(const it_daemon *d, const char *needle)
{
    char *text = read_log(d);
    bool found = text && strstr(text, needle) != NULL;
    free(text);
    return found;
}

const char *it_port(const char *endpoint)
{
    const char *colon = strrchr(endpoint, ':');
    return colon ? colon + 1 : endpoint;
}

int64_t it_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int it_run_tool(const it_daemon *d, const char *flag, char *out, size_t size)
{
    char log[IT_PATH_MAX + 16];
    snprintf(log, sizeof log, "%s/tool.out", d->dir);
    out[0] = '\0';
    it_daemon tool = {0};
    tool.pid = fork();
    if (tool.pid < 0) {
        it_fail("fork: %s", strerror(errno));
        return -1;
    }
    if (tool.pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(DEALFLOWD_PATH, DEALFLOWD_PATH, flag, "--data", d->data, (char *)NULL);
        _exit(127);
    }
    int status = it_wait_exit(&tool, 60000);
    if (status < 0 && tool.pid > 0) {
        it_fail("dealflowd %s did not finish within a minute", flag);
        kill(tool.pid, SIGKILL);
        it_wait_exit(&tool, 5000);
    }
    FILE *f = fopen(log, "r");
    if (f) {
        size_t n = fread(out, 1, size - 1, f);
        out[n] = '\0';
        fclose(f);
    }
    return status;
}
