/*
 * nvbench: the workloads of `nodevisor bench linux`, one static binary that
 * runs the same way inside a guest and on the host (the reference).
 *
 *   nvbench compute  SECONDS [THREADS]     integer mixing loop per thread
 *   nvbench pingpong SECONDS [CPU_A CPU_B] a byte bounced between two threads
 *                                          pinned to two CPUs, through pipes
 *   nvbench lock     SECONDS [THREADS]     threads contend one pthread mutex
 *   nvbench fork     SECONDS               fork + _exit + waitpid
 *   nvbench disk     SECONDS PATH direct|cached
 *                                          128 KiB sequential reads of PATH
 *   nvbench idle     SECONDS               sleeps (a guest that stays up, e.g. to be snapshotted)
 *
 * THREADS defaults to $NODEVISOR_VCPUS (set by nodevisor's /init), else the
 * CPUs this process may run on; thread i is pinned to CPU i mod that count.
 * Each workload runs until SECONDS have passed and prints its results as
 *
 *   metric NAME VALUE UNIT higher|lower
 *
 * lines (the protocol user workloads follow too; see the README).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "metric.h"

#define MAX_THREADS 1024
#define CHUNK 65536

static atomic_int go;
static atomic_int stop;

static int allowed_cpus(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  return CPU_COUNT(&set);
}

/* The n-th CPU this process may use (wrapping), so pinning works under taskset too. */
static int nth_cpu(int n) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
  int count = CPU_COUNT(&set);
  n %= count;
  for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
    if (CPU_ISSET(cpu, &set) && n-- == 0) return cpu;
  return 0;
}

static void pin(int n) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(nth_cpu(n), &set);
  sched_setaffinity(0, sizeof set, &set);
}

static int default_threads(void) {
  const char *v = getenv("NODEVISOR_VCPUS");
  int n = v ? atoi(v) : 0;
  return n > 0 ? n : allowed_cpus();
}

static double seconds_arg(const char *s) {
  double d = s ? atof(s) : 0;
  if (!(d > 0)) {
    fprintf(stderr, "nvbench: SECONDS must be a positive number\n");
    exit(2);
  }
  return d;
}

static void sleep_for(double seconds) {
  struct timespec ts = {(time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

struct worker {
  pthread_t thread;
  int index;
  uint64_t ops;
  int cpu;
};

/* Starts `n` threads of `fn`, lets them run for `seconds`, joins them; returns the window in seconds. */
static double run_threads(struct worker *w, int n, void *(*fn)(void *), double seconds) {
  atomic_store(&go, 0);
  atomic_store(&stop, 0);
  for (int i = 0; i < n; i++) {
    w[i].index = i;
    w[i].ops = 0;
    if (pthread_create(&w[i].thread, NULL, fn, &w[i]) != 0) die("pthread_create");
  }
  double t0 = now();
  atomic_store(&go, 1);
  sleep_for(seconds);
  atomic_store(&stop, 1);
  for (int i = 0; i < n; i++) pthread_join(w[i].thread, NULL);
  return now() - t0;
}

static void wait_go(struct worker *w) {
  pin(w->index);
  while (!atomic_load_explicit(&go, memory_order_acquire)) {}
  w->cpu = sched_getcpu();
}

static void *compute_thread(void *arg) {
  struct worker *w = arg;
  wait_go(w);
  uint64_t x = 0x9e3779b97f4a7c15ull + w->index;
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    for (int k = 0; k < CHUNK; k++) x = (x ^ (x >> 29)) * 0xbf58476d1ce4e5b9ull + 1;
    w->ops += CHUNK;
  }
  __asm__ volatile("" : : "r"(x));
  return NULL;
}

static int threads_arg(const char *s) {
  int n = s ? atoi(s) : default_threads();
  if (n < 1 || n > MAX_THREADS) {
    fprintf(stderr, "nvbench: THREADS must be 1..%d\n", MAX_THREADS);
    exit(2);
  }
  return n;
}

static void report_threads(struct worker *w, int n, double elapsed, double scale, const char *unit) {
  uint64_t ops = 0;
  char seen[CPU_SETSIZE] = {0};
  int cpus = 0;
  for (int i = 0; i < n; i++) {
    ops += w[i].ops;
    if (w[i].cpu >= 0 && w[i].cpu < CPU_SETSIZE && !seen[w[i].cpu]++) cpus++;
  }
  metric("throughput", ops / elapsed * scale, unit, "higher");
  metric("threads", n, "threads", "higher");
  metric("cpus-used", cpus, "cpus", "higher");
}

static int compute(int argc, char **argv) {
  double seconds = seconds_arg(argc > 0 ? argv[0] : NULL);
  int n = threads_arg(argc > 1 ? argv[1] : NULL);
  static struct worker w[MAX_THREADS];
  double elapsed = run_threads(w, n, compute_thread, seconds);
  report_threads(w, n, elapsed, 1e-6, "Mops/s");
  return 0;
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static volatile uint64_t shared_counter;

static void *lock_thread(void *arg) {
  struct worker *w = arg;
  wait_go(w);
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    for (int k = 0; k < 256; k++) {
      pthread_mutex_lock(&lock);
      shared_counter++;
      pthread_mutex_unlock(&lock);
    }
    w->ops += 256;
  }
  return NULL;
}

static int lock_workload(int argc, char **argv) {
  double seconds = seconds_arg(argc > 0 ? argv[0] : NULL);
  int n = threads_arg(argc > 1 ? argv[1] : NULL);
  static struct worker w[MAX_THREADS];
  double elapsed = run_threads(w, n, lock_thread, seconds);
  report_threads(w, n, elapsed, 1e-3, "kops/s");
  return 0;
}

struct pong {
  int in, out, cpu;
  uint64_t trips;
};

static void *pong_thread(void *arg) {
  struct pong *p = arg;
  pin(p->cpu);
  char b;
  for (;;) {
    if (read(p->in, &b, 1) != 1) return NULL;
    if (b == 'q') return NULL;
    if (write(p->out, &b, 1) != 1) return NULL;
  }
}

static int pingpong(int argc, char **argv) {
  double seconds = seconds_arg(argc > 0 ? argv[0] : NULL);
  int a = argc > 1 ? atoi(argv[1]) : 0;
  int b = argc > 2 ? atoi(argv[2]) : allowed_cpus() - 1;
  int there[2], back[2];
  if (pipe(there) || pipe(back)) die("pipe");
  struct pong p = {there[0], back[1], b, 0};
  pthread_t thread;
  if (pthread_create(&thread, NULL, pong_thread, &p) != 0) die("pthread_create");
  pin(a);
  char c = 'x';
  uint64_t trips = 0;
  /* Warm up: both threads on their CPUs before timing. */
  for (int i = 0; i < 4; i++)
    if (write(there[1], &c, 1) != 1 || read(back[0], &c, 1) != 1) die("pipe");
  double t0 = now(), t = t0;
  while (t - t0 < seconds) {
    for (int i = 0; i < 8; i++) {
      if (write(there[1], &c, 1) != 1 || read(back[0], &c, 1) != 1) die("pipe");
    }
    trips += 8;
    t = now();
  }
  c = 'q';
  if (write(there[1], &c, 1) != 1) die("pipe");
  pthread_join(thread, NULL);
  metric("round-trip", (t - t0) / trips * 1e6, "us", "lower");
  metric("round-trips", trips, "trips", "higher");
  return 0;
}

static int fork_workload(int argc, char **argv) {
  double seconds = seconds_arg(argc > 0 ? argv[0] : NULL);
  uint64_t forks = 0;
  double t0 = now(), t = t0;
  while (t - t0 < seconds) {
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) _exit(0);
    int status;
    if (waitpid(pid, &status, 0) != pid) die("waitpid");
    forks++;
    t = now();
  }
  metric("rate", forks / (t - t0), "forks/s", "higher");
  return 0;
}

static int disk(int argc, char **argv) {
  double seconds = seconds_arg(argc > 0 ? argv[0] : NULL);
  if (argc < 3 || (strcmp(argv[2], "direct") && strcmp(argv[2], "cached"))) {
    fprintf(stderr, "nvbench: disk SECONDS PATH direct|cached\n");
    return 2;
  }
  const size_t block = 128 * 1024;
  int fd = open(argv[1], O_RDONLY | (strcmp(argv[2], "direct") ? 0 : O_DIRECT));
  if (fd < 0) die(argv[1]);
  void *buf;
  if (posix_memalign(&buf, 4096, block)) die("posix_memalign");
  uint64_t bytes = 0;
  off_t at = 0;
  double t0 = now(), t = t0;
  while (t - t0 < seconds) {
    ssize_t got = pread(fd, buf, block, at);
    if (got < 0) die("read");
    if (got == 0) {
      if (at == 0) {
        fprintf(stderr, "nvbench: %s is empty\n", argv[1]);
        return 1;
      }
      at = 0;
      continue;
    }
    bytes += got;
    at += got;
    t = now();
  }
  metric("read", bytes / (t - t0) / (1 << 20), "MiB/s", "higher");
  return 0;
}

static int idle(int argc, char **argv) {
  sleep_for(seconds_arg(argc > 0 ? argv[0] : NULL));
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: nvbench compute|pingpong|lock|fork|disk|idle SECONDS [...]\n");
    return 2;
  }
  const char *w = argv[1];
  if (!strcmp(w, "compute")) return compute(argc - 2, argv + 2);
  if (!strcmp(w, "pingpong")) return pingpong(argc - 2, argv + 2);
  if (!strcmp(w, "lock")) return lock_workload(argc - 2, argv + 2);
  if (!strcmp(w, "fork")) return fork_workload(argc - 2, argv + 2);
  if (!strcmp(w, "disk")) return disk(argc - 2, argv + 2);
  if (!strcmp(w, "idle")) return idle(argc - 2, argv + 2);
  fprintf(stderr, "nvbench: unknown workload \"%s\"\n", w);
  return 2;
}
