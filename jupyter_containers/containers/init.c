/* jc-init: the small init `run --init` puts at PID 1 of a container (what
 * tini is for docker).
 *
 *     /dev/init -- COMMAND [ARG...]
 *
 * It runs COMMAND as its child, forwards every signal it receives to it,
 * reaps every process that ends up as its child (orphans are re-parented to
 * PID 1), and exits with COMMAND's status (128+N when COMMAND was killed by
 * signal N). Statically linked: it is bind-mounted into images whose libc,
 * if any, is not the host's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int first = 1;
    if (first < argc && strcmp(argv[first], "--") == 0)
        first++;
    if (first >= argc) {
        fprintf(stderr, "usage: %s -- COMMAND [ARG...]\n", argv[0]);
        return 2;
    }

    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);

    pid_t child = fork();
    if (child < 0) {
        fprintf(stderr, "jc-init: cannot fork: %s\n", strerror(errno));
        return 1;
    }
    if (child == 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        /* Its own process group with the terminal, so ^C reaches it. */
        setpgid(0, 0);
        tcsetpgrp(STDIN_FILENO, getpid());
        execvp(argv[first], argv + first);
        fprintf(stderr, "jc-init: cannot run %s: %s\n", argv[first], strerror(errno));
        _exit(errno == ENOENT ? 127 : 126);
    }

    for (;;) {
        siginfo_t info;
        int number = sigwaitinfo(&all, &info);
        if (number < 0)
            continue;
        if (number != SIGCHLD) {
            /* Stop signals sent to the init itself go to the child. */
            kill(child, number);
            continue;
        }
        for (;;) {
            int status;
            pid_t pid = waitpid(-1, &status, WNOHANG);
            if (pid <= 0)
                break;
            if (pid == child) {
                if (WIFSIGNALED(status))
                    return 128 + WTERMSIG(status);
                return WEXITSTATUS(status);
            }
        }
    }
}
