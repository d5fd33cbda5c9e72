/*
 * The scaling benchmark's kernels, shared word for word by the guest
 * (guests/bench/scaling.c, ring 3 under nodevisor) and the host reference
 * (bench/ref/scaling-threads.c, pthreads), so "guest efficiency / host
 * efficiency" compares the same instructions. Each call runs one chunk: short
 * enough (microseconds) that the caller notices the end of the measured
 * window promptly, long enough that the check costs nothing.
 *
 * Only plain C types: the guest is freestanding, the host uses libc.
 */
#ifndef NODEVISOR_BENCH_SCALING_WORKLOADS_H
#define NODEVISOR_BENCH_SCALING_WORKLOADS_H

#define WL_COMPUTE    1
#define WL_MEMORY     2
#define WL_CONTENTION 3
#define WL_IPI        4

/* Iterations of the compute kernel per chunk. */
#define WL_COMPUTE_CHUNK 4096ul
/* Bytes the memory kernel copies per chunk (the buffers are a multiple of it). */
#define WL_MEMORY_CHUNK (64ul * 1024)
/* Atomic increments per contention chunk. */
#define WL_CONTENTION_CHUNK 256ul

/*
 * Integer mixing (xorshift plus a counter): one serial dependency chain in
 * registers, no memory traffic, nothing a compiler can vectorise or fold.
 * Returns the new state; callers keep it so the loop is not dead code.
 */
static inline unsigned long wl_compute(unsigned long x, unsigned long iterations) {
  for (unsigned long i = 0; i < iterations; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x += i;
  }
  return x;
}

/* Stream copy with `rep movsq`: the same instruction whatever flags compiled it (the guest has no SSE). */
static inline void wl_copy(void *dst, const void *src, unsigned long bytes) {
  unsigned long qwords = bytes / 8;
  __asm__ volatile("rep movsq" : "+D"(dst), "+S"(src), "+c"(qwords) : : "memory");
}

/* Fills a buffer before measuring, so copies read real pages rather than never-written ones. */
static inline void wl_fill(void *dst, unsigned long pattern, unsigned long bytes) {
  unsigned long qwords = bytes / 8;
  __asm__ volatile("rep stosq" : "+D"(dst), "+c"(qwords) : "a"(pattern) : "memory");
}

/* `lock xadd` on one shared counter: every caller fights over the same cache line. */
static inline void wl_contend(volatile unsigned long *counter, unsigned long increments) {
  for (unsigned long i = 0; i < increments; i++) {
    unsigned long one = 1;
    __asm__ volatile("lock xaddq %0, %1" : "+r"(one), "+m"(*counter) : : "memory");
  }
}

#endif
