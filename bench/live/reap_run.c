/* Runs a tool for the live benchmark and reports the CPU time and peak RSS of
 * the tool and of every process it forks (pmacctd runs a core and a plugin).
 *   reap_run OUT CPU COMMAND [ARGS...]
 * CPU >= 0 pins the command (and so all its processes and threads) to that CPU.
 * The runner is a child subreaper: descendants orphaned by the tool are
 * re-parented here and waited for, so getrusage(RUSAGE_CHILDREN) covers the
 * whole process tree from exec to exit. SIGTERM/SIGINT/SIGHUP/SIGUSR1 are
 * forwarded to the tool's main process.
 * Writes "exit user_s sys_s maxrss_kib" to OUT (maxrss: the largest single
 * process). Build: cc -O2 -o reap_run reap_run.c */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile pid_t child;

static void forward(int sig)
{
    if (child > 0)
        kill(child, sig);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s OUT CPU COMMAND [ARGS...]\n", argv[0]);
        return 2;
    }
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
        perror("reap_run: PR_SET_CHILD_SUBREAPER");
        return 2;
    }
    int cpu = atoi(argv[2]);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);

    pid_t pid = fork();
    if (pid < 0) {
        perror("reap_run: fork");
        return 2;
    }
    if (pid == 0) {
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        signal(SIGUSR1, SIG_DFL);
        if (cpu >= 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(cpu, &set);
            if (sched_setaffinity(0, sizeof set, &set) != 0) {
                perror("reap_run: sched_setaffinity");
                _exit(127);
            }
        }
        execvp(argv[3], argv + 3);
        perror("reap_run: exec");
        _exit(127);
    }
    child = pid;
    int rc = -1;
    for (;;) {
        int status;
        pid_t w = waitpid(-1, &status, 0);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            break; /* ECHILD: the whole tree is gone */
        }
        if (w == pid) {
            rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            child = 0;
        }
    }
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    FILE *f = fopen(argv[1], "w");
    if (!f) {
        perror("reap_run: output");
        return 2;
    }
    fprintf(f, "%d %ld.%06ld %ld.%06ld %ld\n", rc, (long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec,
            (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec, ru.ru_maxrss);
    fclose(f);
    return rc < 0 ? 2 : rc;
}
