/*
 * jc-monitor: the one process jupyter-containers keeps per container (the
 * role conmon plays for podman).
 *
 * It detaches from whoever started it, runs the start hook that creates the
 * container, adopts the container's init (it is a child subreaper), writes
 * the container's output to a json-file log, relays it to attach clients,
 * records the exit status in exit.json and runs the exit hook, which may ask
 * for a restart. Everything else is done by the hooks. The command line and
 * the protocols are described in docs/architecture.md, "Monitor command line
 * and protocol".
 *
 * Plain C99 and Linux, libc only: it must stay small, because one runs for
 * every container.
 */
#define HOLD_MAX 64
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

enum {
    FRAME_STDIN = 0,
    FRAME_STDOUT = 1,
    FRAME_STDERR = 2,
    FRAME_EXIT = 3,
    FRAME_STARTED = 4,
    FRAME_CLOSE_STDIN = 5,
    FRAME_RESIZE = 6,
};
#define FRAME_HEADER 8
#define FRAME_PAYLOAD_MAX 65536        /* largest frame a client may send */
#define CLIENT_READ 16384

#define LOG_LINE_MAX 16384             /* docker splits longer lines */
#define READ_CHUNK 32768
#define CLIENTS_MAX 32
#define CLIENT_QUEUE_MAX (4u << 20)    /* output queued for one client before it is dropped */
#define STDIN_QUEUE_MAX (1u << 20)     /* stdin queued before clients are no longer read */
#define DRAIN_IDLE_MS 1000             /* after the init exits: stop waiting for EOF after this long without output */
#define FLUSH_CLIENTS_MS 1000          /* at the end: how long clients get to read what is queued for them */
#define EXIT_RESTART 75                /* exit hook status asking for another start */
#define EXIT_SETUP 125                 /* our own failures, as docker reports runtime errors */

struct buf {
    char *data;
    size_t off, len, cap;              /* pending bytes are data[off, len) */
};

struct client {
    int fd;
    int read_closed;                   /* the client shut down its sending side */
    struct buf in, out;
};

enum phase { WAITING_FOR_ATTACH, STARTING, RUNNING, EXITED };

static struct {
    const char *id, *state_dir, *run_dir;
    long long log_max_size;
    int log_max_files;
    int tty, stdin_open, wait_attach;
    int ready_fd;
    int hold[HOLD_MAX];                /* --hold-fd: kept open, unused (port reservations) */
    int hold_count;
    long long health_interval_ms;      /* --health-interval: run HOOK… health this often */
    const char *oom_counter;           /* --oom-counter: a cgroup file with an "oom_kill N" line */
    char **hook;                       /* HOOK ARGV… ACTION NULL */
    int hook_argc;
} opt = {.log_max_files = 1, .ready_fd = -1};

static int state_dirfd = -1, run_dirfd = -1, devnull = -1, signal_fd = -1, listen_fd = -1;
static enum phase phase;

/* The container's stdio, our ends. With --tty out_fd[0] is the pty master
 * and stdin_fd a duplicate of it. */
static int out_fd[2] = {-1, -1};
static int stdin_fd = -1;
static struct buf stdin_queue;
static int stdin_close_requested;

static int sync_fd = -1;
static char sync_line[1024];
static size_t sync_len;

static pid_t hook_pid, health_pid;
static int hook_status, hook_done;
static pid_t container_pid;
static int container_status, container_done;
static struct timespec container_finished;

/* Children reaped while the start hook runs, before it has told us which one
 * is the container: the container may exit before we know its pid. */
static struct { pid_t pid; int status; struct timespec when; } early_exits[16];
static int early_exit_count;

static struct client clients[CLIENTS_MAX];
static int client_count;

static int log_fd = -1;
static long long log_size;
static struct buf log_pending;
static char partial[2][LOG_LINE_MAX];
static size_t partial_len[2];
static char partial_time[2][40];
static long long last_output_ms;

static char read_chunk[READ_CHUNK];

/* --- small helpers ------------------------------------------------------ */

static void warn(const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    dprintf(STDERR_FILENO, "jc-monitor %s: %s\n", opt.id ? opt.id : "", message);
}

static long long monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* RFC 3339 with nanoseconds in UTC, the fixed-width form docker's json-file
 * uses (so the strings also sort by time). */
static void format_time(const struct timespec *ts, char out[40])
{
    struct tm tm;
    gmtime_r(&ts->tv_sec, &tm);
    /* The modulos bound each field's width for the compiler's benefit. */
    snprintf(out, 40, "%04u-%02u-%02uT%02u:%02u:%02u.%09luZ", (unsigned)(tm.tm_year + 1900) % 10000u,
             (unsigned)(tm.tm_mon + 1) % 100u, (unsigned)tm.tm_mday % 100u, (unsigned)tm.tm_hour % 100u,
             (unsigned)tm.tm_min % 100u, (unsigned)tm.tm_sec % 100u, (unsigned long)ts->tv_nsec % 1000000000ul);
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

static size_t buf_pending(const struct buf *b)
{
    return b->len - b->off;
}

static int buf_reserve(struct buf *b, size_t extra)
{
    if (b->off > 0 && b->len + extra > b->cap) {
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    if (b->len + extra <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra)
        cap *= 2;
    char *data = realloc(b->data, cap);
    if (!data)
        return -1;
    b->data = data;
    b->cap = cap;
    return 0;
}

static int buf_append(struct buf *b, const void *data, size_t len)
{
    if (buf_reserve(b, len) < 0)
        return -1;
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

/* Marks n bytes as used; a large buffer that becomes empty goes back to the
 * allocator, so a burst of output does not stay resident. */
static void buf_consume(struct buf *b, size_t n)
{
    b->off += n;
    if (b->off < b->len)
        return;
    b->off = b->len = 0;
    if (b->cap > 65536) {
        free(b->data);
        b->data = NULL;
        b->cap = 0;
    }
}

static void buf_free(struct buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* --- JSON and UTF-8 ----------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (Unicode table 3-7), 0 if the
 * bytes are not one. */
static size_t utf8_sequence(const unsigned char *s, size_t n)
{
    unsigned char lo = 0x80, hi = 0xBF;
    size_t len;
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        len = 2;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        len = 3;
        if (s[0] == 0xE0)
            lo = 0xA0;
        else if (s[0] == 0xED)
            hi = 0x9F;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        len = 4;
        if (s[0] == 0xF0)
            lo = 0x90;
        else if (s[0] == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k < len; k++)
        if ((s[k] & 0xC0) != 0x80)
            return 0;
    return len;
}

/* Appends the bytes as the inside of a JSON string. Bytes that are not UTF-8
 * become U+FFFD, one per byte, as in docker's logs. */
static int json_escape(struct buf *out, const char *data, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)data;
    if (buf_reserve(out, n * 6) < 0)
        return -1;
    char *o = out->data + out->len;
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c >= 0x80) {
            size_t len = utf8_sequence(s + i, n - i);
            if (len == 0) {
                memcpy(o, "\\ufffd", 6);
                o += 6;
                i++;
            } else {
                memcpy(o, s + i, len);
                o += len;
                i += len;
            }
            continue;
        }
        i++;
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c == '\n') {
            *o++ = '\\';
            *o++ = 'n';
        } else if (c == '\r') {
            *o++ = '\\';
            *o++ = 'r';
        } else if (c == '\t') {
            *o++ = '\\';
            *o++ = 't';
        } else if (c < 0x20) {
            memcpy(o, "\\u00", 4);
            o[4] = hex[c >> 4];
            o[5] = hex[c & 15];
            o += 6;
        } else {
            *o++ = (char)c;
        }
    }
    out->len = (size_t)(o - out->data);
    return 0;
}

/* --- the json-file log -------------------------------------------------- */

static int open_log(const char *name, int flags)
{
    return openat(state_dirfd, name, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | flags, 0640);
}

static void log_write_pending(void)
{
    size_t n = buf_pending(&log_pending);
    if (n == 0)
        return;
    if (write_all(log_fd, log_pending.data + log_pending.off, n) < 0)
        warn("cannot write the log: %s", strerror(errno));
    else
        log_size += (long long)n;
    buf_consume(&log_pending, n);
}

/* ctr.log → ctr.log.1 → … keeping --log-max-files in all. ctr.log is
 * replaced by rename, so a reader never finds it missing and sees a new
 * inode when it was rotated. */
static void log_rotate(void)
{
    char from[32], to[32];
    fsync(log_fd);
    if (opt.log_max_files > 1) {
        for (int k = opt.log_max_files - 1; k >= 2; k--) {
            snprintf(from, sizeof from, "ctr.log.%d", k - 1);
            snprintf(to, sizeof to, "ctr.log.%d", k);
            if (renameat(state_dirfd, from, state_dirfd, to) < 0 && errno != ENOENT)
                warn("cannot rotate %s: %s", from, strerror(errno));
        }
        unlinkat(state_dirfd, "ctr.log.1", 0);
        if (linkat(state_dirfd, "ctr.log", state_dirfd, "ctr.log.1", 0) < 0)
            warn("cannot rotate ctr.log: %s", strerror(errno));
    }
    int fd = open_log("ctr.log.new", O_TRUNC);
    if (fd < 0 || renameat(state_dirfd, "ctr.log.new", state_dirfd, "ctr.log") < 0) {
        warn("cannot start a new ctr.log: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return;
    }
    close(log_fd);
    log_fd = fd;
    log_size = 0;
}

static void log_line(int stream, const char *data, size_t len, const char *when)
{
    static const char *const names[2] = {"stdout", "stderr"};
    char tail[96];
    int tail_len = snprintf(tail, sizeof tail, "\",\"stream\":\"%s\",\"time\":\"%s\"}\n", names[stream], when);
    size_t start = log_pending.len;
    if (buf_append(&log_pending, "{\"log\":\"", 8) < 0 || json_escape(&log_pending, data, len) < 0 ||
        buf_append(&log_pending, tail, (size_t)tail_len) < 0) {
        warn("out of memory: a log line was lost");
        log_pending.len = start;
        return;
    }
    size_t before = start - log_pending.off;
    if (opt.log_max_size > 0 && log_size + (long long)buf_pending(&log_pending) > opt.log_max_size &&
        log_size + (long long)before > 0) {
        size_t line_len = log_pending.len - start;
        if (before > 0 && write_all(log_fd, log_pending.data + log_pending.off, before) == 0)
            log_size += (long long)before;
        log_rotate();
        memmove(log_pending.data, log_pending.data + start, line_len);
        log_pending.off = 0;
        log_pending.len = line_len;
    }
}

/* Splits a full partial line before a multi-byte character it would cut. */
static size_t split_point(const unsigned char *s, size_t len)
{
    for (size_t k = len; k > 0 && k + 4 > len; k--) {
        unsigned char c = s[k - 1];
        if ((c & 0xC0) == 0x80)
            continue;
        size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        return (k - 1 + need > len && k > 1) ? k - 1 : len;
    }
    return len;
}

static void log_output(int stream, const char *data, size_t len, const char *when)
{
    char *line = partial[stream];
    size_t *have = &partial_len[stream];
    memcpy(partial_time[stream], when, 40);
    while (len > 0) {
        size_t take = len < LOG_LINE_MAX - *have ? len : LOG_LINE_MAX - *have;
        const char *newline = memchr(data, '\n', take);
        if (newline)
            take = (size_t)(newline - data) + 1;
        memcpy(line + *have, data, take);
        *have += take;
        data += take;
        len -= take;
        if (newline) {
            log_line(stream, line, *have, when);
            *have = 0;
        } else if (*have == LOG_LINE_MAX) {
            size_t cut = split_point((const unsigned char *)line, *have);
            log_line(stream, line, cut, when);
            memmove(line, line + cut, *have - cut);
            *have -= cut;
        }
    }
}

static void log_flush_partial(int stream)
{
    if (partial_len[stream] > 0)
        log_line(stream, partial[stream], partial_len[stream], partial_time[stream]);
    partial_len[stream] = 0;
    log_write_pending();
}

/* --- attach clients ----------------------------------------------------- */

static void drop_client(struct client *c)
{
    close_fd(&c->fd);
    buf_free(&c->in);
    buf_free(&c->out);
}

static void compact_clients(void)
{
    int kept = 0;
    for (int i = 0; i < client_count; i++)
        if (clients[i].fd >= 0)
            clients[kept++] = clients[i];
    client_count = kept;
}

static void client_flush(struct client *c)
{
    while (c->fd >= 0 && buf_pending(&c->out) > 0) {
        ssize_t n = send(c->fd, c->out.data + c->out.off, buf_pending(&c->out), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                drop_client(c);
            return;
        }
        buf_consume(&c->out, (size_t)n);
    }
}

static void client_send(struct client *c, int type, const void *data, size_t len)
{
    unsigned char header[FRAME_HEADER] = {(unsigned char)type, 0, 0, 0, (unsigned char)(len >> 24),
                                          (unsigned char)(len >> 16), (unsigned char)(len >> 8), (unsigned char)len};
    if (c->fd < 0)
        return;
    /* A client that cannot keep up is dropped: the log must never wait. */
    if (buf_pending(&c->out) + FRAME_HEADER + len > CLIENT_QUEUE_MAX || buf_append(&c->out, header, FRAME_HEADER) < 0 ||
        buf_append(&c->out, data, len) < 0) {
        drop_client(c);
        return;
    }
    client_flush(c);
}

static void broadcast(int type, const void *data, size_t len)
{
    for (int i = 0; i < client_count; i++)
        client_send(&clients[i], type, data, len);
}

static void send_number(struct client *c, int type, long value)
{
    char text[24];
    int len = snprintf(text, sizeof text, "%ld", value);
    if (c)
        client_send(c, type, text, (size_t)len);
    else
        broadcast(type, text, (size_t)len);
}

/* The "oom_kill N" count of the container's memory cgroup (v1
 * memory.oom_control, v2 memory.events); -1 when there is none to read. */
static long oom_kills(void)
{
    if (!opt.oom_counter)
        return -1;
    int fd = open(opt.oom_counter, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char text[1024];
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0)
        return -1;
    text[n] = '\0';
    for (char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        long count;
        if (sscanf(line, "oom_kill %ld", &count) == 1)
            return count;
    }
    return -1;
}

static int container_exit_code(void)
{
    if (WIFSIGNALED(container_status))
        return 128 + WTERMSIG(container_status);
    return WEXITSTATUS(container_status);
}

static void accept_client(void)
{
    int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return;
    if (client_count == CLIENTS_MAX) {
        warn("more than %d attach clients: refusing one", CLIENTS_MAX);
        close(fd);
        return;
    }
    struct client *c = &clients[client_count++];
    memset(c, 0, sizeof *c);
    c->fd = fd;
    if (phase == RUNNING)
        send_number(c, FRAME_STARTED, container_pid);
    else if (phase == EXITED)
        send_number(c, FRAME_EXIT, container_exit_code());
}

/* --- the container's stdin ---------------------------------------------- */

static void close_stdin(void)
{
    close_fd(&stdin_fd);
    buf_consume(&stdin_queue, buf_pending(&stdin_queue));
    stdin_close_requested = 0;
}

static void stdin_flush(void)
{
    while (stdin_fd >= 0 && buf_pending(&stdin_queue) > 0) {
        ssize_t n = write(stdin_fd, stdin_queue.data + stdin_queue.off, buf_pending(&stdin_queue));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                close_stdin();      /* EPIPE: nobody reads the container's stdin any more */
            return;
        }
        buf_consume(&stdin_queue, (size_t)n);
    }
    if (stdin_fd < 0 || !stdin_close_requested || buf_pending(&stdin_queue) > 0)
        return;
    if (opt.tty) {
        /* Closing the master would hang up the terminal: send end-of-file
         * the way a user at the terminal does. */
        struct termios t;
        char eof = tcgetattr(stdin_fd, &t) == 0 && t.c_cc[VEOF] != _POSIX_VDISABLE ? (char)t.c_cc[VEOF] : 4;
        stdin_close_requested = 0;
        if (buf_append(&stdin_queue, &eof, 1) == 0)
            stdin_flush();
    } else {
        close_stdin();
    }
}

static void handle_frame(int type, const char *payload, size_t len)
{
    if (type == FRAME_STDIN && opt.stdin_open) {
        if (buf_append(&stdin_queue, payload, len) < 0)
            warn("out of memory: stdin data was lost");
        stdin_flush();
    } else if (type == FRAME_CLOSE_STDIN && opt.stdin_open) {
        stdin_close_requested = 1;
        stdin_flush();
    } else if (type == FRAME_RESIZE && opt.tty && out_fd[0] >= 0) {
        char text[32];
        unsigned rows, cols;
        size_t n = len < sizeof text - 1 ? len : sizeof text - 1;
        memcpy(text, payload, n);
        text[n] = '\0';
        if (sscanf(text, "%u %u", &rows, &cols) == 2 && rows <= 0xFFFF && cols <= 0xFFFF) {
            struct winsize size = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
            ioctl(out_fd[0], TIOCSWINSZ, &size);
        }
    }
}

static void client_read(struct client *c)
{
    if (buf_reserve(&c->in, CLIENT_READ) < 0) {
        drop_client(c);
        return;
    }
    ssize_t n = recv(c->fd, c->in.data + c->in.len, CLIENT_READ, MSG_DONTWAIT);
    if (n < 0) {
        if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
            drop_client(c);
        return;
    }
    if (n == 0) {
        c->read_closed = 1;     /* it may still want output and the exit frame */
        return;
    }
    c->in.len += (size_t)n;
    while (buf_pending(&c->in) >= FRAME_HEADER) {
        const unsigned char *h = (const unsigned char *)c->in.data + c->in.off;
        size_t len = (size_t)h[4] << 24 | (size_t)h[5] << 16 | (size_t)h[6] << 8 | h[7];
        if (len > FRAME_PAYLOAD_MAX) {
            warn("an attach client sent a frame of %zu bytes: dropping it", len);
            drop_client(c);
            return;
        }
        if (buf_pending(&c->in) < FRAME_HEADER + len)
            break;
        handle_frame(h[0], (const char *)h + FRAME_HEADER, len);
        buf_consume(&c->in, FRAME_HEADER + len);
    }
}

/* --- children ----------------------------------------------------------- */

static void reap_children(void)
{
    struct signalfd_siginfo info;
    while (read(signal_fd, &info, sizeof info) > 0)
        ;
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0)
            return;
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        if (pid == hook_pid) {
            hook_status = status;
            hook_done = 1;
            hook_pid = 0;
        } else if (health_pid > 0 && pid == health_pid) {
            health_pid = 0;
        } else if (container_pid > 0 && pid == container_pid) {
            container_status = status;
            container_finished = now;
            container_done = 1;
        } else if (phase == STARTING) {
            int slot = early_exit_count < 16 ? early_exit_count++ : 15;
            early_exits[slot].pid = pid;
            early_exits[slot].status = status;
            early_exits[slot].when = now;
        }
    }
}

/* Forks HOOK ARGV… ACTION with fds[0..count) as its fds 0..count-1 and
 * nothing else open. */
static pid_t run_hook(const char *action, const int *fds, int count)
{
    opt.hook[opt.hook_argc] = (char *)action;
    pid_t pid = fork();
    if (pid != 0)
        return pid;

    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* Ignored signals stay ignored across exec: give the hook the defaults. */
    signal(SIGPIPE, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    setsid();
    int moved[4];
    for (int i = 0; i < count; i++)
        if ((moved[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 16)) < 0)
            _exit(EXIT_SETUP);
    for (int i = 0; i < count; i++)
        if (dup2(moved[i], i) < 0)
            _exit(EXIT_SETUP);
    if (close_range((unsigned)count, ~0U, 0) < 0)
        for (int fd = count; fd < 4096; fd++)
            close(fd);
    execvp(opt.hook[0], opt.hook);
    int error = errno;
    if (count > 3)
        dprintf(3, "error %d cannot run the %s hook %s: %s\n", EXIT_SETUP, action, opt.hook[0], strerror(error));
    dprintf(2, "jc-monitor: cannot run %s: %s\n", opt.hook[0], strerror(error));
    _exit(EXIT_SETUP);
}

/* --- the event loop ----------------------------------------------------- */

static void close_output(int stream)
{
    close_fd(&out_fd[stream]);
    log_flush_partial(stream);
}

static void read_output(int stream)
{
    ssize_t n = read(out_fd[stream], read_chunk, sizeof read_chunk);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {               /* EOF, or EIO from a pty master with no slave left */
        close_output(stream);
        return;
    }
    struct timespec now;
    char when[40];
    clock_gettime(CLOCK_REALTIME, &now);
    format_time(&now, when);
    last_output_ms = monotonic_ms();
    broadcast(stream == 0 ? FRAME_STDOUT : FRAME_STDERR, read_chunk, (size_t)n);
    log_output(stream, read_chunk, (size_t)n, when);
    log_write_pending();
}

static void read_sync(void)
{
    ssize_t n = read(sync_fd, sync_line + sync_len, sizeof sync_line - 1 - sync_len);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n > 0)
        sync_len += (size_t)n;
    sync_line[sync_len] = '\0';
    if (n <= 0 || memchr(sync_line, '\n', sync_len) || sync_len == sizeof sync_line - 1)
        close_fd(&sync_fd);
}

static void loop_once(int timeout_ms)
{
    struct pollfd p[8 + CLIENTS_MAX];
    int n = 0;
    int at_signal = -1, at_listen = -1, at_out[2] = {-1, -1}, at_sync = -1, at_stdin = -1, at_ready = -1;
    int at_client = 0;

#define WATCH(slot, fd_, events_)                                                                  \
    do {                                                                                           \
        slot = n;                                                                                  \
        p[n].fd = (fd_);                                                                           \
        p[n].events = (events_);                                                                   \
        p[n++].revents = 0;                                                                        \
    } while (0)

    WATCH(at_signal, signal_fd, POLLIN);
    if (listen_fd >= 0)
        WATCH(at_listen, listen_fd, POLLIN);
    for (int s = 0; s < 2; s++)
        if (out_fd[s] >= 0)
            WATCH(at_out[s], out_fd[s], POLLIN);
    if (sync_fd >= 0)
        WATCH(at_sync, sync_fd, POLLIN);
    if (stdin_fd >= 0 && buf_pending(&stdin_queue) > 0)
        WATCH(at_stdin, stdin_fd, POLLOUT);
    if (phase == WAITING_FOR_ATTACH && opt.ready_fd >= 0)
        WATCH(at_ready, opt.ready_fd, 0);       /* POLLERR once the starter is gone */
    at_client = n;
    for (int i = 0; i < client_count; i++) {
        struct client *c = &clients[i];
        short events = buf_pending(&c->out) > 0 ? POLLOUT : 0;
        if (!c->read_closed && buf_pending(&stdin_queue) < STDIN_QUEUE_MAX)
            events |= POLLIN;
        p[n].fd = c->fd;
        p[n].events = events;
        p[n++].revents = 0;
    }
#undef WATCH

    if (poll(p, (nfds_t)n, timeout_ms) <= 0)
        return;

    if (p[at_signal].revents)
        reap_children();
    for (int i = 0; i < client_count; i++) {
        struct client *c = &clients[i];
        short revents = p[at_client + i].revents;
        if (revents & POLLIN)
            client_read(c);
        if (c->fd >= 0 && (revents & POLLOUT))
            client_flush(c);
        if (c->fd >= 0 && (revents & (POLLHUP | POLLERR)) && !(revents & POLLIN))
            drop_client(c);
    }
    for (int s = 0; s < 2; s++)
        if (at_out[s] >= 0 && p[at_out[s]].revents)
            read_output(s);
    if (at_sync >= 0 && p[at_sync].revents)
        read_sync();
    if (at_stdin >= 0 && p[at_stdin].revents)
        stdin_flush();
    if (at_ready >= 0 && p[at_ready].revents)
        close_fd(&opt.ready_fd);
    compact_clients();
    if (at_listen >= 0 && p[at_listen].revents)
        accept_client();
}

/* --- start, exit, restart ----------------------------------------------- */

static void wait_container(void);

static void report_ready(const char *fmt, ...)
{
    if (opt.ready_fd < 0)
        return;
    char line[1200];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (len > (int)sizeof line - 2)
        len = (int)sizeof line - 2;
    line[len++] = '\n';
    write_all(opt.ready_fd, line, (size_t)len);
    close_fd(&opt.ready_fd);
}

static int make_pipe(int fds[2], int our_end)
{
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -1;
    return set_nonblocking(fds[our_end]);
}

static int open_pty(int *slave)
{
    int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    if (master < 0)
        return -1;
    if (unlockpt(master) == 0) {
        *slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (*slave < 0) {
            char name[64];
            if (ptsname_r(master, name, sizeof name) == 0)
                *slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
        }
        if (*slave >= 0)
            return master;
    }
    close(master);
    return -1;
}

/* Sets up the container's stdio and runs the start hook. Returns 0, or -1
 * with the reason in `error`. */
static int spawn_start_hook(char *error, size_t error_size)
{
    int child[4] = {-1, -1, -1, -1};
    int out[2] = {-1, -1}, err[2] = {-1, -1}, in[2] = {-1, -1}, sync[2] = {-1, -1}, slave = -1;
    int ok = 0;
    if (make_pipe(sync, 0) < 0)
        goto fail;
    if (opt.tty) {
        if ((out_fd[0] = open_pty(&slave)) < 0)
            goto fail;
        if (opt.stdin_open && (stdin_fd = fcntl(out_fd[0], F_DUPFD_CLOEXEC, 3)) < 0)
            goto fail;
        child[0] = child[1] = child[2] = slave;
    } else {
        if (make_pipe(out, 0) < 0 || make_pipe(err, 0) < 0)
            goto fail;
        if (opt.stdin_open && make_pipe(in, 1) < 0)
            goto fail;
        out_fd[0] = out[0];
        out_fd[1] = err[0];
        stdin_fd = in[1];
        out[0] = err[0] = in[1] = -1;
        child[0] = opt.stdin_open ? in[0] : devnull;
        child[1] = out[1];
        child[2] = err[1];
    }
    child[3] = sync[1];
    sync_fd = sync[0];
    sync[0] = -1;
    sync_len = 0;
    hook_done = 0;
    hook_pid = run_hook("start", child, 4);
    ok = hook_pid > 0;
fail:
    if (!ok) {
        snprintf(error, error_size, "cannot start the container: %s", strerror(errno));
        close_fd(&sync_fd);
    }
    for (int i = 0; i < 2; i++) {
        close_fd(&out[i]);
        close_fd(&err[i]);
        close_fd(&in[i]);
        close_fd(&sync[i]);
    }
    close_fd(&slave);
    return ok ? 0 : -1;
}

static const char *describe_status(int status, char *text, size_t size)
{
    if (WIFSIGNALED(status))
        snprintf(text, size, "was killed by signal %d", WTERMSIG(status));
    else
        snprintf(text, size, "exited with status %d", WEXITSTATUS(status));
    return text;
}

/* Decides how the start went once the start hook has reported and exited.
 * Returns 0 with container_pid set, or the exit code docker would give with
 * the reason in `error`. */
static int start_outcome(char *error, size_t error_size)
{
    char *newline = memchr(sync_line, '\n', sync_len);
    if (newline)
        *newline = '\0';
    long pid;
    int code, consumed = 0;
    if (sscanf(sync_line, "pid %ld%n", &pid, &consumed) == 1 && sync_line[consumed] == '\0' && pid > 1) {
        for (int i = 0; i < early_exit_count; i++) {
            if (early_exits[i].pid == pid) {
                container_pid = (pid_t)pid;
                container_status = early_exits[i].status;
                container_finished = early_exits[i].when;
                container_done = 1;
                return 0;
            }
        }
        int status;
        pid_t got = waitpid((pid_t)pid, &status, WNOHANG);
        if (got < 0) {
            snprintf(error, error_size, "the start hook reported pid %ld, which is not the monitor's child", pid);
            return EXIT_SETUP;
        }
        container_pid = (pid_t)pid;
        if (got == pid) {
            container_status = status;
            clock_gettime(CLOCK_REALTIME, &container_finished);
            container_done = 1;
        }
        return 0;
    }
    if (sscanf(sync_line, "error %d %n", &code, &consumed) == 1 && consumed > 0) {
        snprintf(error, error_size, "%s", sync_line + consumed);
        return code > 0 && code < 256 ? code : EXIT_SETUP;
    }
    char status[64];
    if (sync_len == 0)
        snprintf(error, error_size, "the start hook %s without reporting the container's pid",
                 describe_status(hook_status, status, sizeof status));
    else
        snprintf(error, error_size, "the start hook wrote an unexpected line: %.200s", sync_line);
    return EXIT_SETUP;
}

static void write_exit_json(pid_t pid, int code, int signal_number, const struct timespec *when, const char *error,
                            int oom_killed)
{
    char head[160], time_text[40];
    struct buf json = {0};
    format_time(when, time_text);
    int len = snprintf(head, sizeof head,
                       "{\"pid\":%d,\"exit_code\":%d,\"signal\":%d,\"oom_killed\":%s,\"finished_at\":\"%s\"",
                       (int)pid, code, signal_number, oom_killed ? "true" : "false", time_text);
    int failed = buf_append(&json, head, (size_t)len) < 0;
    if (error)
        failed = failed || buf_append(&json, ",\"error\":\"", 10) < 0 || json_escape(&json, error, strlen(error)) < 0 ||
                 buf_append(&json, "\"", 1) < 0;
    failed = failed || buf_append(&json, "}\n", 2) < 0;

    int fd = failed ? -1 : openat(state_dirfd, ".exit.json.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write_all(fd, json.data, json.len) < 0 || close(fd) < 0 ||
        renameat(state_dirfd, ".exit.json.tmp", state_dirfd, "exit.json") < 0) {
        warn("cannot write exit.json: %s", strerror(errno));
        unlinkat(state_dirfd, ".exit.json.tmp", 0);
    }
    buf_free(&json);
}

static void drain_output(void)
{
    last_output_ms = monotonic_ms();
    while (out_fd[0] >= 0 || out_fd[1] >= 0) {
        long long idle = monotonic_ms() - last_output_ms;
        if (idle >= DRAIN_IDLE_MS) {
            /* A process outside the container's PID namespace still holds
             * the pipe: what it writes later is not the container's. */
            warn("output still open %d ms after the container exited: closing it", DRAIN_IDLE_MS);
            break;
        }
        loop_once((int)(DRAIN_IDLE_MS - idle));
    }
    for (int s = 0; s < 2; s++)
        close_output(s);
}

/* One start of the container, until its exit is recorded. Returns the exit
 * hook's status. */
static int run_once(void)
{
    char error[1024] = "";
    int error_code = 0;

    phase = STARTING;
    container_pid = 0;
    container_done = 0;
    early_exit_count = 0;
    if (spawn_start_hook(error, sizeof error) < 0) {
        error_code = EXIT_SETUP;
    } else {
        while (!hook_done)
            loop_once(-1);
        /* All the hook wrote is in the pipe now; the container may still
         * hold fd 3, so do not wait for EOF. */
        if (sync_fd >= 0)
            read_sync();
        close_fd(&sync_fd);
        error_code = start_outcome(error, sizeof error);
    }

    if (error_code == 0) {
        report_ready("ok %d %d", (int)container_pid, (int)getpid());
        phase = RUNNING;
        send_number(NULL, FRAME_STARTED, container_pid);
        wait_container();
    } else {
        report_ready("error %d %s", error_code, error);
        warn("start failed: %s", error);
    }
    close_stdin();
    drain_output();

    if (error_code == 0) {
        int sig = WIFSIGNALED(container_status) ? WTERMSIG(container_status) : 0;
        /* Each start gets a new cgroup: any kill it counts is this run's. */
        write_exit_json(container_pid, container_exit_code(), sig, &container_finished, NULL, oom_kills() > 0);
    } else {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        container_pid = 0;
        container_status = error_code << 8;     /* as if it had exited with that code */
        write_exit_json(0, error_code, 0, &now, error, 0);
    }
    phase = EXITED;
    send_number(NULL, FRAME_EXIT, container_exit_code());
    /* Durability after the news: readers see the log and exit.json from
     * the page cache already; syncing only matters for a power cut. */
    if (fsync(log_fd) < 0)
        warn("cannot sync the log: %s", strerror(errno));
    fsync(state_dirfd);

    int hook_fds[3] = {devnull, STDERR_FILENO, STDERR_FILENO};
    hook_done = 0;
    hook_pid = run_hook("exited", hook_fds, 3);
    if (hook_pid < 0) {
        warn("cannot run the exit hook: %s", strerror(errno));
        return -1;
    }
    while (!hook_done)
        loop_once(-1);
    if (!WIFEXITED(hook_status) || (WEXITSTATUS(hook_status) != 0 && WEXITSTATUS(hook_status) != EXIT_RESTART)) {
        char status[64];
        warn("the exit hook %s", describe_status(hook_status, status, sizeof status));
    }
    return WIFEXITED(hook_status) ? WEXITSTATUS(hook_status) : -1;
}

/* Waits for the container's exit, running the health hook every
 * --health-interval meanwhile (never two at once). */
static void wait_container(void)
{
    long long next_check = opt.health_interval_ms ? monotonic_ms() + opt.health_interval_ms : 0;
    while (!container_done) {
        int timeout = -1;
        if (next_check) {
            long long now = monotonic_ms();
            if (now >= next_check) {
                if (health_pid == 0) {
                    int fds[3] = {devnull, STDERR_FILENO, STDERR_FILENO};
                    health_pid = run_hook("health", fds, 3);
                    if (health_pid < 0) {
                        warn("cannot run the health hook: %s", strerror(errno));
                        health_pid = 0;
                    }
                }
                next_check = now + opt.health_interval_ms;
            }
            timeout = (int)(next_check - now);
        }
        loop_once(timeout);
    }
}

static void shut_down(void)
{
    unlinkat(run_dirfd, "attach.sock", 0);
    close_fd(&listen_fd);
    long long deadline = monotonic_ms() + FLUSH_CLIENTS_MS;
    for (;;) {
        int waiting = 0;
        for (int i = 0; i < client_count; i++)
            waiting |= buf_pending(&clients[i].out) > 0;
        long long left = deadline - monotonic_ms();
        if (!waiting || left <= 0)
            break;
        loop_once((int)left);
    }
    for (int i = 0; i < client_count; i++)
        drop_client(&clients[i]);
    client_count = 0;
}

/* --- setup -------------------------------------------------------------- */

static void usage_error(const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    dprintf(STDERR_FILENO, "jc-monitor: %s\n", message);
    report_ready("error %d %s", EXIT_SETUP, message);
    exit(EXIT_SETUP);
}

static long long parse_number(const char *flag, const char *text, long long min)
{
    char *end;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (errno || end == text || *end || value < min)
        usage_error("%s wants a whole number of at least %lld, not '%s'", flag, min, text);
    return value;
}

static void parse_args(int argc, char **argv)
{
    int i;
    for (i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(arg, "--tty") == 0) {
            opt.tty = 1;
            continue;
        }
        if (strcmp(arg, "--stdin") == 0) {
            opt.stdin_open = 1;
            continue;
        }
        if (strcmp(arg, "--wait-attach") == 0) {
            opt.wait_attach = 1;
            continue;
        }
        if (i + 1 >= argc)
            usage_error("%s wants a value (usage: jc-monitor --id ID --state-dir DIR --run-dir DIR [options] -- HOOK ARGV...)", arg);
        const char *value = argv[++i];
        if (strcmp(arg, "--id") == 0)
            opt.id = value;
        else if (strcmp(arg, "--state-dir") == 0)
            opt.state_dir = value;
        else if (strcmp(arg, "--run-dir") == 0)
            opt.run_dir = value;
        else if (strcmp(arg, "--log-max-size") == 0)
            opt.log_max_size = parse_number(arg, value, 0);
        else if (strcmp(arg, "--log-max-files") == 0)
            opt.log_max_files = (int)parse_number(arg, value, 1);
        else if (strcmp(arg, "--ready-fd") == 0)
            opt.ready_fd = (int)parse_number(arg, value, 0);
        else if (strcmp(arg, "--hold-fd") == 0) {
            if (opt.hold_count >= HOLD_MAX)
                usage_error("at most %d --hold-fd", HOLD_MAX);
            opt.hold[opt.hold_count++] = (int)parse_number(arg, value, 0);
        } else if (strcmp(arg, "--health-interval") == 0)
            opt.health_interval_ms = parse_number(arg, value, 1);
        else if (strcmp(arg, "--oom-counter") == 0)
            opt.oom_counter = value;
        else
            usage_error("unknown option %s", arg);
    }
    if (opt.ready_fd >= 0 && fcntl(opt.ready_fd, F_GETFD) < 0) {
        int fd = opt.ready_fd;
        opt.ready_fd = -1;
        usage_error("--ready-fd %d is not an open file descriptor", fd);
    }
    for (int k = 0; k < opt.hold_count; k++)
        if (fcntl(opt.hold[k], F_GETFD) < 0)
            usage_error("--hold-fd %d is not an open file descriptor", opt.hold[k]);
    if (!opt.id || !opt.state_dir || !opt.run_dir)
        usage_error("--id, --state-dir and --run-dir are required");
    if (opt.log_max_files > 1000)
        usage_error("--log-max-files must be at most 1000");
    if (i >= argc)
        usage_error("no hook: give it after --");
    opt.hook_argc = argc - i;
    opt.hook = calloc((size_t)opt.hook_argc + 2, sizeof *opt.hook);
    if (!opt.hook)
        usage_error("out of memory");
    memcpy(opt.hook, argv + i, (size_t)opt.hook_argc * sizeof *opt.hook);
}

static int open_dir(const char *flag, const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        usage_error("cannot open %s %s: %s", flag, path, strerror(errno));
    return fd;
}

static int compare_ints(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

/* Keeps only stdio, the ready fd and the --hold-fd fds (each moved above 2,
 * so that redirecting stdio cannot clobber it, and close-on-exec, so that
 * no child inherits it); closes everything else. */
static void close_inherited_fds(void)
{
    int *kept[1 + HOLD_MAX];
    int count = 0;
    if (opt.ready_fd >= 0)
        kept[count++] = &opt.ready_fd;
    for (int k = 0; k < opt.hold_count; k++)
        kept[count++] = &opt.hold[k];
    int sorted[1 + HOLD_MAX];
    for (int k = 0; k < count; k++) {
        int fd = *kept[k];
        if (fd < 3 && (fd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0)
            usage_error("cannot keep fd %d: %s", *kept[k], strerror(errno));
        if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
            usage_error("cannot keep fd %d: %s", fd, strerror(errno));
        *kept[k] = sorted[k] = fd;
    }
    qsort(sorted, (size_t)count, sizeof *sorted, compare_ints);
    unsigned low = 3;
    for (int k = 0; k < count; k++) {
        if ((unsigned)sorted[k] > low)
            close_range(low, (unsigned)sorted[k] - 1, 0);
        if ((unsigned)sorted[k] + 1 > low)
            low = (unsigned)sorted[k] + 1;
    }
    close_range(low, ~0U, 0);
}

/* monitor.pid holds an exclusive flock for the monitor's lifetime: others
 * test liveness by trying to lock it, which no reused pid can fool. */
static int lock_pid_file(void)
{
    int fd = openat(run_dirfd, "monitor.pid", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        usage_error("cannot create monitor.pid in %s: %s", opt.run_dir, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK)
            usage_error("container %s already has a running monitor", opt.id);
        usage_error("cannot lock monitor.pid: %s", strerror(errno));
    }
    return fd;
}

static int listen_attach(void)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strcpy(addr.sun_path, "attach.sock");
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    /* A relative name: the run directory's full path may be longer than a
     * socket address can hold. */
    if (fd < 0 || fchdir(run_dirfd) < 0)
        usage_error("cannot create attach.sock: %s", strerror(errno));
    unlink("attach.sock");
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || chmod("attach.sock", 0600) < 0 || listen(fd, 16) < 0)
        usage_error("cannot listen on %s/attach.sock: %s", opt.run_dir, strerror(errno));
    if (chdir("/") < 0)
        usage_error("cannot change to /: %s", strerror(errno));
    return fd;
}

/* Leaves the caller: it reaps our first process at once; the monitor is the
 * grandchild, in a session of its own and not its leader, so it never gets a
 * controlling terminal. */
static void detach(int pid_fd, int monitor_log)
{
    pid_t pid = fork();
    if (pid < 0)
        usage_error("cannot fork: %s", strerror(errno));
    if (pid > 0)
        _exit(0);
    setsid();
    pid = fork();
    if (pid < 0) {
        report_ready("error %d cannot fork: %s", EXIT_SETUP, strerror(errno));
        _exit(EXIT_SETUP);
    }
    if (pid > 0)
        _exit(0);

    char text[24];
    int len = snprintf(text, sizeof text, "%d\n", (int)getpid());
    if (ftruncate(pid_fd, 0) < 0 || write_all(pid_fd, text, (size_t)len) < 0)
        warn("cannot write monitor.pid: %s", strerror(errno));
    dup2(devnull, STDIN_FILENO);
    dup2(devnull, STDOUT_FILENO);
    dup2(monitor_log, STDERR_FILENO);
    close(monitor_log);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    /* The runtime stops containers by signalling them, never the monitor:
     * a stray signal must not cost the container its log and exit status. */
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);

    parse_args(argc, argv);
    close_inherited_fds();
    state_dirfd = open_dir("--state-dir", opt.state_dir);
    run_dirfd = open_dir("--run-dir", opt.run_dir);
    devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0)
        usage_error("cannot open /dev/null: %s", strerror(errno));
    int pid_fd = lock_pid_file();
    listen_fd = listen_attach();
    log_fd = open_log("ctr.log", 0);
    int monitor_log = openat(run_dirfd, "monitor.log", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (log_fd < 0 || monitor_log < 0)
        usage_error("cannot open the logs: %s", strerror(errno));
    struct stat st;
    log_size = fstat(log_fd, &st) == 0 ? (long long)st.st_size : 0;

    detach(pid_fd, monitor_log);

    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
        warn("cannot become a child subreaper: %s", strerror(errno));
    sigset_t child;
    sigemptyset(&child);
    sigaddset(&child, SIGCHLD);
    sigprocmask(SIG_BLOCK, &child, NULL);
    signal_fd = signalfd(-1, &child, SFD_CLOEXEC | SFD_NONBLOCK);
    if (signal_fd < 0) {
        report_ready("error %d cannot create a signalfd: %s", EXIT_SETUP, strerror(errno));
        return EXIT_SETUP;
    }

    phase = WAITING_FOR_ATTACH;
    if (opt.wait_attach) {
        int has_starter = opt.ready_fd >= 0;
        while (client_count == 0 && (!has_starter || opt.ready_fd >= 0))
            loop_once(-1);
        if (client_count == 0) {
            /* The starter closed the ready pipe before attaching: it gave
             * up, so nothing is started (as docker starts nothing when the
             * client goes before it attached). */
            warn("the starter went away before attaching: not starting");
            shut_down();
            return 0;
        }
    }
    while (run_once() == EXIT_RESTART)
        ;
    shut_down();
    return 0;
}
