/* harness_process.h: runs dealflowd as a child process: its temp dir, free ports, start,
 * stop, crash and restart, and its log. */
#ifndef DF_IT_HARNESS_PROCESS_H
#define DF_IT_HARNESS_PROCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define IT_PATH_MAX     512
#define IT_ENDPOINT_MAX 64
#define IT_MAX_EXTRA    16
/* Flags it_exec_daemon passes on after the endpoints, at most. */
#define IT_MAX_ARGS 64

/* One daemon process: its temp dir, data dir, log, endpoints and the
 * client sockets the harness keeps to it. */
typedef struct it_daemon {
    char dir[IT_PATH_MAX - 32]; /* removed by it_cleanup */
    char data[IT_PATH_MAX];     /* --data; dir/data unless a test changes it */
    char log[IT_PATH_MAX];      /* the daemon's stderr, appended over restarts */
    char ingest[IT_ENDPOINT_MAX];
    char api[IT_ENDPOINT_MAX];
    char notify[IT_ENDPOINT_MAX];
    const char *extra[IT_MAX_EXTRA]; /* more flags, after the endpoints */
    int nextra;
    long nofile; /* when > 0, the soft RLIMIT_NOFILE dealflowd starts with */
    pid_t pid;   /* 0 when not running */
    void *dealer;
    void *push;
} it_daemon;

/* Makes the temp dir and picks three free ports; extra is a NULL-terminated
 * list of more flags (or NULL). Does not start anything. */
bool it_init(it_daemon *d, const char *const *extra);
/* Forks and execs dealflowd with d's flags; stderr and stdout go to d->log. */
bool it_spawn(it_daemon *d);
/* Pings until the daemon answers; false (and the log printed) when it exits
 * or the deadline passes. */
bool it_wait_ready(it_daemon *d);
/* it_init + it_spawn + it_wait_ready. */
bool it_start(it_daemon *d, const char *const *extra);
/* Waits for the process to exit; returns its exit status, 128 + signal when
 * killed, or -1 when it is still running at the deadline. */
int it_wait_exit(it_daemon *d, int timeout_ms);
/* SIGTERM and wait: the exit status as it_wait_exit (SIGKILL after the deadline). */
int it_stop(it_daemon *d);
/* SIGKILL and wait. The ingest socket is closed so nothing queued reaches a restarted daemon. */
void it_crash(it_daemon *d);
/* Starts the daemon again on the same data dir and ports. */
bool it_restart(it_daemon *d);
/* Stops the daemon if it runs, closes its sockets and removes the temp dir. */
void it_cleanup(it_daemon *d);
/* Runs `dealflowd FLAG --data DIR` on the daemon's data directory (a tool such
 * as --verify or --compact) and waits for it, killing it after a minute:
 * its exit status as it_wait_exit, and what it printed in out. */
int it_run_tool(const it_daemon *d, const char *flag, char *out, size_t size);
void it_print_log(const it_daemon *d);
bool it_log_contains(const it_daemon *d, const char *needle);
/* The port of a tcp endpoint, as text. */
const char *it_port(const char *endpoint);

/* Finds three free loopback tcp endpoints; false (errno set) when none can be had. */
bool it_pick_ports(char endpoints[3][IT_ENDPOINT_MAX]);
/* Forks and execs the dealflowd at path with --data, then --ingest, --api and --notify
 * on endpoints[0..2], then the extra flags (at most IT_MAX_ARGS); its stdout and stderr
 * go to log (appended, or truncated first), its stdin is /dev/null. The child's pid, or
 * -1 (errno set). */
pid_t it_exec_daemon(const char *path, const char *data, const char *const endpoints[3],
                     const char *const *extra, int nextra, const char *log, bool truncate_log);
/* it_exec_daemon, with the child's soft RLIMIT_NOFILE set to nofile first
 * when nofile > 0 (it stays under the hard limit). */
pid_t it_exec_daemon_nofile(const char *path, const char *data, const char *const endpoints[3],
                            const char *const *extra, int nextra, const char *log,
                            bool truncate_log, long nofile);
/* What a wait status says, as text in buf. */
const char *it_describe_status(int status, char *buf, size_t size);
/* Removes a file or a directory tree. */
void it_remove_tree(const char *path);

/* Wall-clock milliseconds since the Unix epoch. */
int64_t it_wall_ms(void);

#endif
