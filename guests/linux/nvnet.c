/*
 * nvnet: the TCP workloads of `nodevisor bench virtio-net`, one static
 * binary that runs the same way inside a guest and on the host (the veth
 * reference).
 *
 *   nvnet server PORT                        serves both workloads, for ever
 *   nvnet stream HOST PORT SECONDS [CONNS]   CONNS connections (default 1)
 *                                            send 64 KiB writes for SECONDS
 *   nvnet rr     HOST PORT SECONDS [CONNS]   CONNS connections bounce one
 *                                            byte back and forth (TCP_NODELAY)
 *
 * A client's first byte tells the server which workload: 'S' (read and
 * discard until EOF, then close) or 'R' (echo every byte). The stream
 * clock stops when the server has closed after reading everything, so
 * the rate counts delivered bytes, not buffered ones. Connection i's
 * thread is pinned to CPU i mod the CPUs available, so in a guest with a
 * queue pair per vCPU each connection sends from its own queue. Results
 * are `metric NAME VALUE UNIT higher|lower` lines (see nvbench.c).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "metric.h"

#define MAX_CONNS 64
#define CHUNK 65536

static struct sockaddr_in server_addr;
static double seconds;
static atomic_int ready;

static void pin(int n) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return;
  int count = CPU_COUNT(&set);
  n %= count;
  for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
    if (CPU_ISSET(cpu, &set) && n-- == 0) {
      CPU_ZERO(&set);
      CPU_SET(cpu, &set);
      sched_setaffinity(0, sizeof set, &set);
      return;
    }
  }
}

static void write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) die("write");
    p += w;
    n -= (size_t)w;
  }
}

/* ---- server ---- */

static void *serve(void *arg) {
  int fd = (int)(long)arg;
  static char discard[CHUNK];
  char mode;
  if (read(fd, &mode, 1) == 1) {
    if (mode == 'S') {
      while (read(fd, discard, sizeof discard) > 0) {}
    } else if (mode == 'R') {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      char b;
      while (read(fd, &b, 1) == 1) write_all(fd, &b, 1);
    }
  }
  close(fd);
  return NULL;
}

static void __attribute__((noreturn)) server(int port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0) die("socket");
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port), .sin_addr.s_addr = htonl(INADDR_ANY) };
  if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
  if (listen(s, 64) < 0) die("listen");
  printf("nvnet: listening on port %d\n", port);
  fflush(stdout);
  for (;;) {
    int fd = accept(s, NULL, NULL);
    if (fd < 0) {
      if (errno == EINTR) continue;
      die("accept");
    }
    pthread_t t;
    if (pthread_create(&t, NULL, serve, (void *)(long)fd) != 0) die("pthread_create");
    pthread_detach(t);
  }
}

/* ---- clients ---- */

struct conn {
  int index;
  char mode;
  double bytes, round_trips, elapsed;
};

static int dial(char mode) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) die("socket");
  if (mode == 'R') {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  if (connect(fd, (struct sockaddr *)&server_addr, sizeof server_addr) < 0) die("connect");
  write_all(fd, &mode, 1);
  return fd;
}

static void *client(void *arg) {
  struct conn *c = arg;
  pin(c->index);
  int fd = dial(c->mode);
  atomic_fetch_add(&ready, 1);
  double t0 = now(), end = t0 + seconds;
  if (c->mode == 'S') {
    static char data[CHUNK];
    memset(data, 0x5a, sizeof data);
    while (now() < end) {
      write_all(fd, data, sizeof data);
      c->bytes += sizeof data;
    }
    /* Delivered, not buffered: wait for the server to close after reading it all. */
    shutdown(fd, SHUT_WR);
    char b;
    while (read(fd, &b, 1) > 0) {}
  } else {
    char b = 'x';
    while (now() < end) {
      write_all(fd, &b, 1);
      ssize_t r;
      do r = read(fd, &b, 1); while (r < 0 && errno == EINTR);
      if (r != 1) die("read");
      c->round_trips++;
    }
  }
  c->elapsed = now() - t0;
  close(fd);
  return NULL;
}

static int clients(char mode, int argc, char **argv) {
  if (argc < 5) return 2;
  memset(&server_addr, 0, sizeof server_addr);
  server_addr.sin_family = AF_INET;
  server_addr.sin_port = htons((unsigned short)atoi(argv[3]));
  if (inet_pton(AF_INET, argv[2], &server_addr.sin_addr) != 1) {
    fprintf(stderr, "nvnet: %s is not an IPv4 address\n", argv[2]);
    return 2;
  }
  seconds = atof(argv[4]);
  int n = argc > 5 ? atoi(argv[5]) : 1;
  if (n < 1 || n > MAX_CONNS || seconds <= 0) return 2;
  static struct conn conns[MAX_CONNS];
  pthread_t threads[MAX_CONNS];
  for (int i = 0; i < n; i++) {
    conns[i] = (struct conn){ .index = i, .mode = mode };
    if (pthread_create(&threads[i], NULL, client, &conns[i]) != 0) die("pthread_create");
  }
  double bytes = 0, trips = 0, latency = 0, slowest = 0;
  for (int i = 0; i < n; i++) {
    pthread_join(threads[i], NULL);
    bytes += conns[i].bytes;
    trips += conns[i].round_trips;
    if (conns[i].round_trips) latency += conns[i].elapsed / conns[i].round_trips / n;
    if (conns[i].elapsed > slowest) slowest = conns[i].elapsed;
  }
  if (mode == 'S') {
    metric("stream", bytes / 1048576.0 / slowest, "MiB/s", "higher");
  } else {
    metric("rr-latency", latency * 1e6, "us", "lower");
    metric("rr-rate", trips / slowest, "trans/s", "higher");
  }
  metric("connections", n, "connections", "higher");
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc >= 3 && !strcmp(argv[1], "server")) server(atoi(argv[2]));
  if (argc >= 2 && !strcmp(argv[1], "stream")) return clients('S', argc, argv) == 2 ? (fprintf(stderr, "usage: nvnet stream HOST PORT SECONDS [CONNS]\n"), 2) : 0;
  if (argc >= 2 && !strcmp(argv[1], "rr")) return clients('R', argc, argv) == 2 ? (fprintf(stderr, "usage: nvnet rr HOST PORT SECONDS [CONNS]\n"), 2) : 0;
  fprintf(stderr, "usage: nvnet server PORT | nvnet stream|rr HOST PORT SECONDS [CONNS]\n");
  return 2;
}
