/* jc-exec: run a new process in a running container (``exec``).
 *
 *   jc-exec --pid PID --start-ticks T --sync-fd FD
 *           [--ns NAME]... [--cgroup DIR]...
 *           --uid U --gid G [--groups G1,G2,...] --caps HEXMASK
 *           [--no-new-privs] [--seccomp FILE] [--cwd DIR] [--tty] [--detach]
 *           [--env-fd FD] [-e NAME=VALUE]... -- PROGRAM [ARG]...
 *
 * The runtime (containers/exec.py) decides everything in Python: the
 * namespaces to join in order, the cgroup directories, the user (resolved
 * from the container's own /etc/passwd and /etc/group), the capability
 * set, the compiled seccomp filter, the environment (NUL-separated
 * NAME=VALUE entries in --env-fd, a memfd: a command line is visible to
 * every host user in ps, and an environment may hold secrets; -e adds
 * entries). This program only carries it out, in the order runc uses, with
 * nothing to import:
 *
 *  0. run from a sealed memfd copy of itself, so that no process in the
 *     container can ever open this host binary for writing through
 *     /proc/PID/exe (CVE-2019-5736; runc and crun do the same), and be
 *     non-dumpable;
 *  1. open /proc/PID and check through that directory that PID is still the
 *     container's process (its start time): every later open goes through
 *     the same directory, so a reused pid cannot redirect them;
 *  2. open every /proc/PID/ns/NAME and read the seccomp filter while the
 *     host's /proc is in view;
 *  3. join the container's cgroups (write 0 to DIR/cgroup.procs);
 *  4. setns into each namespace, then fork: the child is in the PID
 *     namespace, starts a session of its own (it never shares the caller's
 *     terminal: with --tty the new pty becomes its controlling terminal),
 *     gets default signal dispositions and an empty signal mask, becomes the
 *     container's user with its capabilities, no_new_privs and seccomp
 *     filter, enters the working directory and execs (with a $PATH search
 *     in the container's environment);
 *  5. report ``pid N`` (the host's pid of the process) or
 *     ``error CODE MESSAGE`` on the sync fd, as the start hook does; then,
 *     unless --detach, pass SIGINT, SIGTERM, SIGHUP and SIGQUIT on to the
 *     process's group (it leads one), wait for it and exit with its status (128+N for a signal).
 *
 * Codes, as docker's: 125 the runtime failed before the process existed,
 * 126 the command cannot be run (user, working directory, permission,
 * privileges), 127 the command was not found.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

#define MAX_ITEMS 64
#define MAX_ID 0xFFFFFFFEULL /* (uid_t)-1 means "unchanged" to setresuid */
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

extern char **environ;

static int sync_fd = -1;
static volatile pid_t child_pid = 0;

struct options {
    long pid;
    unsigned long long start_ticks;
    const char *namespaces[MAX_ITEMS];
    int n_namespaces;
    const char *cgroups[MAX_ITEMS];
    int n_cgroups;
    uid_t uid;
    gid_t gid;
    gid_t *groups;
    int n_groups;
    uint64_t caps;
    int no_new_privs;
    const char *seccomp;
    const char *cwd;
    int tty;
    int detach;
    char **env;
    int n_env, env_capacity;
    char **args;
};

/* One line on the sync fd, newlines folded (the reader reads one line). */
static void report(const char *format, ...) {
    char line[4096];
    va_list ap;
    va_start(ap, format);
    int n = vsnprintf(line, sizeof line - 1, format, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (n > (int)sizeof line - 2)
        n = sizeof line - 2;
    for (int i = 0; i < n; i++)
        if (line[i] == '\n')
            line[i] = ' ';
    line[n++] = '\n';
    /* A reader gone must not kill this process (only the parent reports,
     * after the fork or instead of it; the child resets every signal). */
    signal(SIGPIPE, SIG_IGN);
    if (sync_fd >= 0 && write(sync_fd, line, n) < 0) {
        /* nobody listens: the exit status still says it */
    }
}

static int fail(int code, const char *format, ...) {
    char message[3072];
    va_list ap;
    va_start(ap, format);
    vsnprintf(message, sizeof message, format, ap);
    va_end(ap);
    report("error %d %s", code, message);
    return code;
}

static int usage(const char *why) {
    fprintf(stderr, "jc-exec: %s (this program is run by jupyter-containers, not by hand)\n", why);
    return 125;
}

/* Digits only (strtoull would take a sign and spaces), at most ``limit``. */
static int parse_number(const char *text, unsigned long long *value, int base, unsigned long long limit) {
    char *end;
    const char *digits = base == 16 ? "0123456789abcdefABCDEF" : "0123456789";
    if (!*text || strspn(text, digits) != strlen(text))
        return -1;
    errno = 0;
    *value = strtoull(text, &end, base);
    return errno || *end || *value > limit ? -1 : 0;
}

/* Room for ``more`` entries and the terminating NULL. */
static int grow_env(struct options *o, int more) {
    int capacity = o->env_capacity ? o->env_capacity : 64;
    while (capacity < o->n_env + more + 1)
        capacity *= 2;
    if (capacity == o->env_capacity)
        return 0;
    char **env = realloc(o->env, capacity * sizeof *env);
    if (!env)
        return -1;
    memset(env + o->n_env, 0, (capacity - o->n_env) * sizeof *env);
    o->env = env;
    o->env_capacity = capacity;
    return 0;
}

/* NUL-separated NAME=VALUE entries, read whole from ``fd``, then closed. */
static int read_env(struct options *o, int fd) {
    size_t size = 0, capacity = 4096;
    char *data = malloc(capacity);
    ssize_t n;
    while (data && (n = read(fd, data + size, capacity - size - 1)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            free(data);
            return -1;
        }
        size += n;
        if (capacity - size < 2) {
            char *bigger = realloc(data, capacity *= 2);
            if (!bigger)
                free(data);
            data = bigger;
        }
    }
    if (!data)
        return -1;
    close(fd);
    data[size] = 0;
    for (size_t at = 0; at < size; at += strlen(data + at) + 1) {
        if (!data[at])
            continue;
        if (grow_env(o, 1))
            return -1;
        o->env[o->n_env++] = data + at;
    }
    return 0;
}

static int parse_groups(struct options *o, const char *value) {
    int count = 1;
    for (const char *p = value; *p; p++)
        count += *p == ',';
    o->groups = calloc(count, sizeof *o->groups);
    char *copy = strdup(value), *save = NULL;
    if (!o->groups || !copy)
        return -1;
    unsigned long long number;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        if (parse_number(item, &number, 10, MAX_ID))
            return -1;
        o->groups[o->n_groups++] = (gid_t)number;
    }
    free(copy);
    return 0;
}

static int parse(int argc, char **argv, struct options *o) {
    memset(o, 0, sizeof *o);
    o->pid = -1;
    unsigned long long number;
    int i = 1;
    for (; i < argc; i++) {
        const char *flag = argv[i];
        if (!strcmp(flag, "--")) {
            i++;
            break;
        }
        if (!strcmp(flag, "--tty")) {
            o->tty = 1;
            continue;
        }
        if (!strcmp(flag, "--detach")) {
            o->detach = 1;
            continue;
        }
        if (!strcmp(flag, "--no-new-privs")) {
            o->no_new_privs = 1;
            continue;
        }
        if (i + 1 >= argc)
            return usage("an option lacks its value");
        const char *value = argv[++i];
        if (!strcmp(flag, "-e")) {
            if (grow_env(o, 1))
                return usage("out of memory");
            o->env[o->n_env++] = (char *)value;
        } else if (!strcmp(flag, "--env-fd")) {
            if (parse_number(value, &number, 10, 65535) || read_env(o, (int)number))
                return usage("cannot read the environment from --env-fd");
        } else if (!strcmp(flag, "--ns") || !strcmp(flag, "--cgroup")) {
            int *count = flag[2] == 'n' ? &o->n_namespaces : &o->n_cgroups;
            if (*count >= MAX_ITEMS)
                return usage("too many namespaces or cgroups");
            (flag[2] == 'n' ? o->namespaces : o->cgroups)[(*count)++] = value;
        } else if (!strcmp(flag, "--seccomp")) {
            o->seccomp = value;
        } else if (!strcmp(flag, "--cwd")) {
            o->cwd = value;
        } else if (!strcmp(flag, "--groups")) {
            if (parse_groups(o, value))
                return usage("bad --groups");
        } else if (!strcmp(flag, "--caps")) {
            if (parse_number(value, &number, 16, ~0ULL))
                return usage("bad --caps");
            o->caps = number;
        } else if (!strcmp(flag, "--pid")) {
            if (parse_number(value, &number, 10, 1 << 30))
                return usage("bad --pid");
            o->pid = (long)number;
        } else if (!strcmp(flag, "--start-ticks")) {
            if (parse_number(value, &number, 10, ~0ULL))
                return usage("bad --start-ticks");
            o->start_ticks = number;
        } else if (!strcmp(flag, "--sync-fd")) {
            if (parse_number(value, &number, 10, 65535))
                return usage("bad --sync-fd");
            sync_fd = (int)number;
        } else if (!strcmp(flag, "--uid") || !strcmp(flag, "--gid")) {
            if (parse_number(value, &number, 10, MAX_ID))
                return usage("a user or group id is out of range");
            if (flag[2] == 'u')
                o->uid = (uid_t)number;
            else
                o->gid = (gid_t)number;
        } else {
            return usage("unknown option");
        }
    }
    if (o->pid <= 0 || i >= argc)
        return usage("--pid and a command are required");
    if (grow_env(o, 0))
        return usage("out of memory");
    o->args = argv + i;
    return 0;
}

/* Step 0: re-exec from a sealed memfd copy unless already running from one. */
static void run_from_sealed_copy(char **argv) {
    int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (self < 0)
        return;
    int seals = fcntl(self, F_GET_SEALS);
    if (seals >= 0 && (seals & F_SEAL_WRITE)) {
        close(self);
        return;
    }
    int copy = memfd_create("jc-exec", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    struct stat st;
    if (copy >= 0 && fstat(self, &st) == 0) {
        off_t offset = 0;
        while (offset < st.st_size && sendfile(copy, self, &offset, st.st_size - offset) > 0)
            ;
        if (offset == st.st_size &&
            fcntl(copy, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) == 0)
            fexecve(copy, argv, environ);
    }
    /* Not possible here (no memfd, no sealing): go on from the file. */
    close(self);
    if (copy >= 0)
        close(copy);
}

/* Field 22 of stat in the process directory ``dir``, or 0 when it is gone. */
static unsigned long long start_ticks(int dir) {
    char data[1024];
    int fd = openat(dir, "stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, data, sizeof data - 1);
    close(fd);
    if (n <= 0)
        return 0;
    data[n] = 0;
    char *p = strrchr(data, ')');
    if (!p)
        return 0;
    p += 2; /* state is field 3; start time field 22 */
    for (int field = 3; field < 22 && p; field++) {
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    return p ? strtoull(p, NULL, 10) : 0;
}

static char *read_file(const char *path, size_t *size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    char *data = NULL;
    if (fstat(fd, &st) == 0 && st.st_size > 0 && (data = malloc(st.st_size)) != NULL) {
        size_t done = 0;
        while (done < (size_t)st.st_size) {
            ssize_t n = read(fd, data + done, st.st_size - done);
            if (n <= 0)
                break;
            done += n;
        }
        *size = done;
    }
    close(fd);
    return data;
}

/* The kernel's highest capability: PR_CAPBSET_READ fails past it. */
static int last_cap(void) {
    int cap = 0;
    while (cap < 63 && prctl(PR_CAPBSET_READ, cap + 1, 0, 0, 0) >= 0)
        cap++;
    return cap;
}

static int cap_set(uint64_t effective, uint64_t permitted) {
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2] = {
        {(uint32_t)effective, (uint32_t)permitted, 0},
        {(uint32_t)(effective >> 32), (uint32_t)(permitted >> 32), 0},
    };
    return (int)syscall(SYS_capset, &header, data);
}

static int load_seccomp(char *program, size_t size) {
    struct sock_fprog prog = {(unsigned short)(size / sizeof(struct sock_filter)), (struct sock_filter *)program};
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

static const char *env_get(struct options *o, const char *name) {
    size_t length = strlen(name);
    const char *found = NULL;
    for (int i = 0; i < o->n_env; i++)
        if (!strncmp(o->env[i], name, length) && o->env[i][length] == '=')
            found = o->env[i] + length + 1;
    return found;
}

/* The error goes up the close-on-exec pipe as "CODE MESSAGE". */
static void child_fail(int pipe_fd, int code, const char *format, ...) {
    char message[3072];
    va_list ap;
    va_start(ap, format);
    int n = snprintf(message, sizeof message, "%d ", code);
    vsnprintf(message + n, sizeof message - n, format, ap);
    va_end(ap);
    if (write(pipe_fd, message, strlen(message)) < 0) {
        /* the parent sees an empty pipe and a status of 127 */
    }
    _exit(code);
}

static void become_process(struct options *o, int pipe_fd, int cap_last, char *filter, size_t filter_size) {
    /* Nothing of the caller's reaches the process: not the sync fd, not its
     * signal dispositions (a Jupyter kernel ignores SIGINT) or mask. */
    close(sync_fd);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int number = 1; number < NSIG; number++)
        signal(number, SIG_DFL); /* fails harmlessly for SIGKILL, SIGSTOP and the RT ones libc keeps */

    /* A session of its own: the caller's terminal is never the process's
     * controlling terminal (TIOCSTI, reading what the user types). */
    if (setsid() < 0)
        child_fail(pipe_fd, 126, "cannot start a session: %s", strerror(errno));
    if (o->tty && ioctl(0, TIOCSCTTY, 0) < 0)
        child_fail(pipe_fd, 126, "cannot make the terminal the controlling one: %s", strerror(errno));
    if (filter && !o->no_new_privs && load_seccomp(filter, filter_size) < 0)
        child_fail(pipe_fd, 126, "cannot load the seccomp filter: %s", strerror(errno));
    for (int cap = 0; cap <= cap_last; cap++)
        if (!(o->caps >> cap & 1) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
            child_fail(pipe_fd, 126, "cannot drop capability %d: %s", cap, strerror(errno));
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0 || setgroups(o->n_groups, o->groups) < 0 ||
        setresgid(o->gid, o->gid, o->gid) < 0 || setresuid(o->uid, o->uid, o->uid) < 0 ||
        prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
        child_fail(pipe_fd, 126, "cannot become user %u:%u: %s", o->uid, o->gid, strerror(errno));
    uint64_t granted = o->uid == 0 ? o->caps : 0;
    if (cap_set(granted, granted) < 0 || prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
        child_fail(pipe_fd, 126, "cannot set the capabilities: %s", strerror(errno));
    if (o->no_new_privs) {
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
            child_fail(pipe_fd, 126, "cannot set no_new_privs: %s", strerror(errno));
        if (filter && load_seccomp(filter, filter_size) < 0)
            child_fail(pipe_fd, 126, "cannot load the seccomp filter: %s", strerror(errno));
    }
    const char *cwd = o->cwd && *o->cwd ? o->cwd : "/";
    if (chdir(cwd) < 0)
        child_fail(pipe_fd, 126, "cannot enter the working directory %s: %s", cwd, strerror(errno));
    /* Nothing of the runtime's reaches the container (CVE-2024-21626 class):
     * fail closed when that cannot be made sure. */
    if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
        child_fail(pipe_fd, 126, "cannot close the runtime's descriptors: %s", strerror(errno));

    const char *program = o->args[0];
    if (strchr(program, '/')) {
        execve(program, o->args, o->env);
        if (errno == ENOENT || errno == ENOTDIR)
            child_fail(pipe_fd, 127, "exec: \"%s\": executable file not found", program);
        child_fail(pipe_fd, 126, "exec: \"%s\": %s", program,
                   errno == EACCES || errno == EPERM ? "permission denied" : strerror(errno));
    }
    const char *search = env_get(o, "PATH");
    if (!search || !*search)
        search = DEFAULT_PATH;
    char *path = strdup(search), candidate[4096];
    int denied = 0;
    /* strtok would skip empty entries, which mean the working directory */
    for (char *dir = path, *next; dir; dir = next) {
        next = strchr(dir, ':');
        if (next)
            *next++ = 0;
        if (snprintf(candidate, sizeof candidate, "%s/%s", *dir ? dir : ".", program) >= (int)sizeof candidate)
            child_fail(pipe_fd, 126, "exec: \"%s\": %s", program, strerror(ENAMETOOLONG));
        execve(candidate, o->args, o->env);
        if (errno == EACCES || errno == EPERM)
            denied = 1;
        else if (errno != ENOENT && errno != ENOTDIR)
            child_fail(pipe_fd, 126, "exec: \"%s\": %s", program, strerror(errno));
    }
    if (denied)
        child_fail(pipe_fd, 126, "exec: \"%s\": permission denied", program);
    child_fail(pipe_fd, 127, "exec: \"%s\": executable file not found in $PATH", program);
}

/* To the process's group, as a terminal's Ctrl-C would: the process leads
 * it (its own session), and a shell's foreground command is in it too. */
static void pass_on(int number) {
    if (child_pid > 0 && kill(-child_pid, number) < 0)
        kill(child_pid, number);
}

int main(int argc, char **argv) {
    run_from_sealed_copy(argv);
    struct options o;
    int invalid = parse(argc, argv, &o);
    if (invalid)
        return invalid;
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    signal(SIGCHLD, SIG_DFL); /* an inherited SIG_IGN would make waitpid fail */

    char proc[64];
    snprintf(proc, sizeof proc, "/proc/%ld", o.pid);
    int proc_dir = open(proc, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (proc_dir < 0 || o.start_ticks == 0 || start_ticks(proc_dir) != o.start_ticks)
        return fail(125, "the container is not running");
    int ns_fds[MAX_ITEMS];
    for (int i = 0; i < o.n_namespaces; i++) {
        char path[128];
        snprintf(path, sizeof path, "ns/%s", o.namespaces[i]);
        ns_fds[i] = openat(proc_dir, path, O_RDONLY | O_CLOEXEC);
        if (ns_fds[i] < 0)
            return fail(125, "the container is not running");
    }
    close(proc_dir);
    char *filter = NULL;
    size_t filter_size = 0;
    if (o.seccomp && !(filter = read_file(o.seccomp, &filter_size)))
        return fail(125, "cannot read the seccomp filter %s: %s", o.seccomp, strerror(errno));
    int cap_last = last_cap();

    for (int i = 0; i < o.n_cgroups; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/cgroup.procs", o.cgroups[i]);
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, "0", 1) != 1)
            return fail(125, "cannot join the container's cgroup %s: %s", o.cgroups[i], strerror(errno));
        close(fd);
    }
    for (int i = 0; i < o.n_namespaces; i++) {
        if (setns(ns_fds[i], 0) < 0)
            return fail(125, "cannot enter the container's %s namespace: %s", o.namespaces[i], strerror(errno));
        close(ns_fds[i]);
    }

    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) < 0)
        return fail(125, "pipe: %s", strerror(errno));
    pid_t child = fork();
    if (child < 0)
        return fail(125, "fork: %s", strerror(errno));
    if (child == 0) {
        close(pipe_fds[0]);
        become_process(&o, pipe_fds[1], cap_last, filter, filter_size);
        _exit(127);
    }
    close(pipe_fds[1]);
    char message[3072];
    size_t length = 0;
    ssize_t n;
    while (length < sizeof message - 1 &&
           ((n = read(pipe_fds[0], message + length, sizeof message - 1 - length)) > 0 || (n < 0 && errno == EINTR)))
        if (n > 0)
            length += n;
    close(pipe_fds[0]);
    if (length) {
        message[length] = 0;
        waitpid(child, NULL, 0);
        char *text = strchr(message, ' ');
        report("error %.*s %s", text ? (int)(text - message) : (int)length, message, text ? text + 1 : "");
        return atoi(message) ? atoi(message) : 126;
    }
    /* The process has its own session, so a Ctrl-C at the caller's
     * terminal reaches this helper, not it: pass such signals on. */
    child_pid = child;
    struct sigaction forward;
    memset(&forward, 0, sizeof forward);
    forward.sa_handler = pass_on;
    sigemptyset(&forward.sa_mask);
    int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    for (size_t i = 0; i < sizeof forwarded / sizeof *forwarded; i++)
        sigaction(forwarded[i], &forward, NULL);
    report("pid %d", (int)child);
    close(sync_fd);
    if (o.detach)
        return 0;
    int status;
    while (waitpid(child, &status, 0) < 0)
        if (errno != EINTR)
            return 125;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
