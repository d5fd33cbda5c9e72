/*
 * Host reference for the scaling suite: the guest's ring-3 kernels
 * (guests/bench/scaling-workloads.h, the same source) on N host pthreads, with the
 * same phases as the guest: every thread runs a warm-up chunk and checks in,
 * WARMUP_MS later the main thread opens the measured window, MEASURE_MS after
 * that it closes it. Each thread counts the work it finishes inside the window
 * and times it with CLOCK_MONOTONIC.
 *
 *   scaling-threads WORKLOAD THREADS WARMUP_MS MEASURE_MS MEM_BUF_BYTES
 *
 * WORKLOAD is compute, memory or contention. Prints one JSON line:
 * {"workload":"compute","threads":2,"results":[{"ops":N,"ns":T},...]}
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "../../guests/bench/scaling-workloads.h"

enum { P_START, P_MEASURE, P_STOP };

struct thread {
  pthread_t id;
  unsigned long index, ops, ns, checksum;
  unsigned char *src, *dst;
} __attribute__((aligned(128)));

static int workload;
static unsigned long buf_bytes;
static volatile int phase = P_START;
static volatile int ready;
/* Its own cache lines, as in the guest's control block. */
static volatile unsigned long counter __attribute__((aligned(128)));

static unsigned long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (unsigned long)ts.tv_sec * 1000000000ul + (unsigned long)ts.tv_nsec;
}

static void sleep_ms(unsigned long ms) {
  struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000l };
  while (nanosleep(&ts, &ts) != 0) {}
}

/* Mirrors user_main in guests/bench/scaling.c. */
static void *worker(void *arg) {
  struct thread *t = arg;
  unsigned long state = 0x9e3779b97f4a7c15ul * (t->index + 1), ops = 0, base = 0, t0 = 0, off = 0;
  int started = 0;
  if (workload == WL_MEMORY) wl_fill(t->src, state, buf_bytes);
  if (workload == WL_MEMORY)
    for (unsigned long o = 0; o < buf_bytes; o += WL_MEMORY_CHUNK) wl_copy(t->dst + o, t->src + o, WL_MEMORY_CHUNK);
  __atomic_add_fetch(&ready, 1, __ATOMIC_SEQ_CST);
  for (;;) {
    if (workload == WL_COMPUTE) {
      state = wl_compute(state, WL_COMPUTE_CHUNK);
      ops += WL_COMPUTE_CHUNK;
    } else if (workload == WL_MEMORY) {
      wl_copy(t->dst + off, t->src + off, WL_MEMORY_CHUNK);
      off = (off + WL_MEMORY_CHUNK) % buf_bytes;
      ops += WL_MEMORY_CHUNK;
    } else {
      wl_contend(&counter, WL_CONTENTION_CHUNK);
      ops += WL_CONTENTION_CHUNK;
    }
    int p = phase;
    if (p == P_MEASURE && !started) {
      t0 = now_ns();
      base = ops;
      started = 1;
    } else if (p == P_STOP) {
      break;
    }
  }
  t->ns = now_ns() - t0;
  t->ops = started ? ops - base : 0;
  t->checksum = state;
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s compute|memory|contention THREADS WARMUP_MS MEASURE_MS MEM_BUF_BYTES\n", argv[0]);
    return 64;
  }
  workload = !strcmp(argv[1], "compute") ? WL_COMPUTE : !strcmp(argv[1], "memory") ? WL_MEMORY
           : !strcmp(argv[1], "contention") ? WL_CONTENTION : 0;
  long n = strtol(argv[2], NULL, 0);
  unsigned long warmup = strtoul(argv[3], NULL, 0), measure = strtoul(argv[4], NULL, 0);
  buf_bytes = strtoul(argv[5], NULL, 0);
  if (!workload || n < 1 || n > 4096 || !measure || buf_bytes < WL_MEMORY_CHUNK || buf_bytes % WL_MEMORY_CHUNK) {
    fprintf(stderr, "%s: bad arguments\n", argv[0]);
    return 64;
  }
  struct thread *threads = aligned_alloc(128, sizeof(struct thread) * (size_t)n);
  if (!threads) return 70;
  memset(threads, 0, sizeof(struct thread) * (size_t)n);
  for (long i = 0; i < n; i++) {
    threads[i].index = (unsigned long)i;
    if (workload == WL_MEMORY) {
      threads[i].src = aligned_alloc(4096, 2 * buf_bytes);
      if (!threads[i].src) return 70;
      threads[i].dst = threads[i].src + buf_bytes;
    }
    if (pthread_create(&threads[i].id, NULL, worker, &threads[i])) return 71;
  }
  while (__atomic_load_n(&ready, __ATOMIC_SEQ_CST) < n) sleep_ms(1);
  sleep_ms(warmup);
  phase = P_MEASURE;
  sleep_ms(measure);
  phase = P_STOP;
  unsigned long checksum = 0;
  printf("{\"workload\":\"%s\",\"threads\":%ld,\"results\":[", argv[1], n);
  for (long i = 0; i < n; i++) {
    pthread_join(threads[i].id, NULL);
    checksum ^= threads[i].checksum;
    printf("%s{\"ops\":%lu,\"ns\":%lu}", i ? "," : "", threads[i].ops, threads[i].ns);
  }
  /* The checksum keeps the compute loop alive; the counter proves the increments happened. */
  printf("],\"checksum\":\"%lx\",\"counter\":%lu}\n", checksum, counter);
  return 0;
}
