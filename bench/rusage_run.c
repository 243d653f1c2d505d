/* Runs a command and reports its wall time, CPU time and peak RSS.
 *   rusage_run OUT CPU COMMAND [ARGS...]
 * CPU >= 0 pins the command to that CPU (inherited by all its threads).
 * Writes "exit wall_s user_s sys_s maxrss_kib" to OUT, microsecond precision.
 * The command is forked from this small process rather than from the
 * benchmark's Python: Linux carries the peak RSS of the image a process
 * exec()s from into ru_maxrss, which would hide small tools behind Python's
 * own size. Build: cc -O2 -o rusage_run rusage_run.c */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s OUT CPU COMMAND [ARGS...]\n", argv[0]);
        return 2;
    }
    int cpu = atoi(argv[2]);
    double t0 = now();
    pid_t pid = fork();
    if (pid < 0) {
        perror("rusage_run: fork");
        return 2;
    }
    if (pid == 0) {
        if (cpu >= 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(cpu, &set);
            if (sched_setaffinity(0, sizeof set, &set) != 0) {
                perror("rusage_run: sched_setaffinity");
                _exit(127);
            }
        }
        execvp(argv[3], argv + 3);
        perror("rusage_run: exec");
        _exit(127);
    }
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0) {
        perror("rusage_run: wait4");
        return 2;
    }
    double wall = now() - t0;
    int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    FILE *f = fopen(argv[1], "w");
    if (!f) {
        perror("rusage_run: output");
        return 2;
    }
    fprintf(f, "%d %.6f %ld.%06ld %ld.%06ld %ld\n", rc, wall, (long)ru.ru_utime.tv_sec,
            (long)ru.ru_utime.tv_usec, (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec,
            ru.ru_maxrss);
    fclose(f);
    return rc;
}
