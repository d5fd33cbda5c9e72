/*
 * nodevisor's /init for Linux guests (built static by `nodevisor image
 * build-initramfs`; see src/images/guest-programs.ts).
 *
 *   1. mounts /proc, /sys, /dev (devtmpfs) and /tmp (tmpfs);
 *   2. prints "nodevisor-init: N CPUs online";
 *   3. runs, with PATH=/bin:/sbin:/usr/bin:/usr/sbin and NODEVISOR_VCPUS=N:
 *      - /etc/nodevisor/init-script if the initramfs has one (a program, or a
 *        script whose #! interpreter is in the initramfs), else
 *      - each line of /etc/nodevisor/run (one command per line, words split
 *        at blanks, no quoting; '#' starts a comment), else
 *      - an interactive shell (/bin/sh) on the console, if there is one;
 *   4. reports "nodevisor-init: exit status S" and powers the machine off.
 *      A non-zero status is written to the debug-exit port (0xf4) first
 *      when the kernel lets PID 1 have it, so `nodevisor run` exits with
 *      (S << 1) | 1, as for guests of our own.
 *
 * The host-side tests and `nodevisor bench linux` match the
 * "nodevisor-init:" lines; keep their wording.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SCRIPT "/etc/nodevisor/init-script"
#define RUN_LIST "/etc/nodevisor/run"
#define SHELL "/bin/sh"
#define DEBUG_EXIT_PORT 0xf4
#define MAX_ARGS 64

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (n > (int)sizeof line - 2) n = sizeof line - 2;
  line[n++] = '\n';
  /* One write per line, so the host never sees our lines torn. */
  (void)!write(2, line, n);
}

static void mount_one(const char *source, const char *target, const char *type, const char *data) {
  mkdir(target, 0755);
  if (mount(source, target, type, MS_NOSUID, data) != 0 && errno != EBUSY)
    say("nodevisor-init: cannot mount %s on %s: %s", type, target, strerror(errno));
}

static int cpus_online(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  return CPU_COUNT(&set);
}

/* Console stdio if the kernel could not give us /dev/console (no such node). */
static void ensure_stdio(void) {
  if (fcntl(0, F_GETFD) != -1) return;
  int fd = open("/dev/console", O_RDWR | O_NOCTTY);
  if (fd < 0) return;
  for (int i = 0; i < 3; i++) dup2(fd, i);
  if (fd > 2) close(fd);
}

/*
 * The terminal behind /dev/console (the last name in
 * /sys/class/tty/console/active, e.g. ttyS0 or hvc0). /dev/console itself
 * cannot be a controlling terminal, and a shell without one has no job
 * control and no Ctrl-C.
 */
static int open_console_tty(void) {
  char names[128] = {0};
  int fd = open("/sys/class/tty/console/active", O_RDONLY);
  if (fd >= 0) {
    ssize_t n = read(fd, names, sizeof names - 1);
    close(fd);
    if (n < 0) n = 0;
    names[n] = 0;
  }
  char *last = NULL;
  for (char *tok = strtok(names, " \n"); tok; tok = strtok(NULL, " \n")) last = tok;
  char path[160];
  snprintf(path, sizeof path, "/dev/%s", last ? last : "console");
  return open(path, O_RDWR);
}

/* Runs argv in a child (its own session, the console its terminal when `tty`); returns its wait status. */
static int run(char *const argv[], int tty) {
  pid_t pid = fork();
  if (pid < 0) {
    say("nodevisor-init: fork: %s", strerror(errno));
    return 127 << 8;
  }
  if (pid == 0) {
    setsid();
    if (tty) {
      int fd = open_console_tty();
      if (fd >= 0) {
        ioctl(fd, TIOCSCTTY, 1);
        for (int i = 0; i < 3; i++) dup2(fd, i);
        if (fd > 2) close(fd);
      }
    }
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    execv(argv[0], argv);
    int e = errno;
    say("nodevisor-init: cannot run %s: %s%s", argv[0], strerror(e),
        e == ENOENT && access(argv[0], F_OK) == 0 ? " (its #! interpreter is not in the initramfs: build it with --busybox?)" : "");
    _exit(127);
  }
  int status = 0;
  /* PID 1 also reaps orphans: wait until our own child is the one that ended. */
  for (;;) {
    pid_t w = wait(&status);
    if (w == pid) return status;
    if (w < 0 && errno != EINTR) return 127 << 8;
  }
}

static int exit_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 127;
}

/* Resolves a bare command name against PATH's directories, as a shell would. */
static const char *resolve(const char *name, char *buf, size_t len) {
  if (strchr(name, '/')) return name;
  static const char *const dirs[] = {"/bin", "/sbin", "/usr/bin", "/usr/sbin"};
  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
    snprintf(buf, len, "%s/%s", dirs[i], name);
    if (access(buf, X_OK) == 0) return buf;
  }
  return name;
}

/* Runs every line of the run list in order; the first failure ends it. */
static int run_list(FILE *f) {
  char line[4096];
  int number = 0;
  while (fgets(line, sizeof line, f)) {
    number++;
    char *hash = strchr(line, '#');
    if (hash) *hash = 0;
    char *argv[MAX_ARGS + 1];
    int argc = 0;
    for (char *tok = strtok(line, " \t\r\n"); tok && argc < MAX_ARGS; tok = strtok(NULL, " \t\r\n")) argv[argc++] = tok;
    if (argc == 0) continue;
    argv[argc] = NULL;
    char path[256];
    argv[0] = (char *)resolve(argv[0], path, sizeof path);
    say("nodevisor-init: run %d: %s", number, argv[0]);
    int code = exit_code(run(argv, 0));
    say("nodevisor-init: run %d exited with status %d", number, code);
    if (code != 0) return code;
  }
  return 0;
}

static void power_off(int code) {
  say("nodevisor-init: exit status %d", code);
  sync();
  /* ioperm needs CONFIG_X86_IOPL_IOPERM; without it the status is only printed. */
  if (code != 0 && ioperm(DEBUG_EXIT_PORT, 1, 1) == 0) outb((unsigned char)code, DEBUG_EXIT_PORT);
  reboot(RB_POWER_OFF);
  for (;;) pause();
}

int main(void) {
  ensure_stdio();
  mount_one("proc", "/proc", "proc", NULL);
  mount_one("sysfs", "/sys", "sysfs", NULL);
  mount_one("devtmpfs", "/dev", "devtmpfs", NULL);
  mount_one("tmpfs", "/tmp", "tmpfs", "mode=1777");
  ensure_stdio();

  int cpus = cpus_online();
  say("nodevisor-init: %d CPUs online", cpus);
  char vcpus[16];
  snprintf(vcpus, sizeof vcpus, "%d", cpus);
  setenv("PATH", "/bin:/sbin:/usr/bin:/usr/sbin", 1);
  setenv("HOME", "/root", 1);
  setenv("TERM", "linux", 0);
  setenv("NODEVISOR_VCPUS", vcpus, 1);
  mkdir("/root", 0700);
  if (chdir("/root") != 0) (void)!chdir("/");
  /* PID 1 must not die of the signals a console sends its foreground job. */
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);

  int code;
  FILE *list;
  if (access(SCRIPT, F_OK) == 0) {
    char *argv[] = {SCRIPT, NULL};
    say("nodevisor-init: run %s", SCRIPT);
    code = exit_code(run(argv, 1));
  } else if ((list = fopen(RUN_LIST, "r")) != NULL) {
    code = run_list(list);
    fclose(list);
  } else if (access(SHELL, X_OK) == 0) {
    char *argv[] = {SHELL, "-l", NULL};
    say("nodevisor-init: starting a shell on the console (exit it to power off)");
    code = exit_code(run(argv, 1));
  } else {
    say("nodevisor-init: nothing to run (no %s, no %s, no %s)", SCRIPT, RUN_LIST, SHELL);
    code = 0;
  }
  power_off(code);
  return 0;
}
