/*
 * What nodevisor's benchmark programs (nvbench.c, nvnet.c) share: a
 * monotonic clock, dying with the reason, and results as
 *
 *   metric NAME VALUE UNIT higher|lower
 *
 * lines, which `nodevisor bench` reads from the guest's console and from
 * the host reference's output alike.
 */
#ifndef NODEVISOR_METRIC_H
#define NODEVISOR_METRIC_H
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern char *program_invocation_short_name;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) {
  fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what, strerror(errno));
  exit(1);
}

static void metric(const char *name, double value, const char *unit, const char *better) {
  printf("metric %s %.6g %s %s\n", name, value, unit, better);
  fflush(stdout);
}
#endif
