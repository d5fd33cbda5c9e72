/*
 * Reference for bench/exit-latency: the same real-mode guest run by the
 * smallest possible C VMM: one thread, one KVM_RUN per exit, the exit read
 * from the kvm_run page. Prints {"exits":N,"ns":T} for the exit loop.
 * Usage: exit-latency-ref GUEST.bin LOAD_ADDRESS
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MEM_SIZE (4u << 20)

static void die(const char *what) {
  fprintf(stderr, "exit-latency-ref: %s: %s\n", what, strerror(errno));
  exit(1);
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s GUEST.bin LOAD_ADDRESS\n", argv[0]);
    return 2;
  }
  unsigned long load = strtoul(argv[2], NULL, 0);
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) die("open /dev/kvm");
  int vm = ioctl(kvm, KVM_CREATE_VM, 0);
  if (vm < 0) die("KVM_CREATE_VM");
  uint8_t *mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) die("mmap");
  FILE *f = fopen(argv[1], "rb");
  if (!f) die(argv[1]);
  size_t n = fread(mem + load, 1, MEM_SIZE - load, f);
  fclose(f);
  if (n == 0) die("empty guest");
  struct kvm_userspace_memory_region region = { .slot = 0, .guest_phys_addr = 0, .memory_size = MEM_SIZE, .userspace_addr = (uintptr_t)mem };
  if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) die("KVM_SET_USER_MEMORY_REGION");
  int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
  if (vcpu < 0) die("KVM_CREATE_VCPU");
  int size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  struct kvm_run *run = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
  if (run == MAP_FAILED) die("mmap kvm_run");
  struct kvm_sregs sregs;
  if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) die("KVM_GET_SREGS");
  sregs.cs.selector = load >> 4;
  sregs.cs.base = load & ~0xful;
  if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) die("KVM_SET_SREGS");
  struct kvm_regs regs = { .rip = load & 0xf, .rflags = 2 };
  if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) die("KVM_SET_REGS");

  unsigned long exits = 0, sink = 0;
  double t0 = now_ns();
  for (;;) {
    if (ioctl(vcpu, KVM_RUN, 0) < 0) {
      if (errno == EINTR) continue;
      die("KVM_RUN");
    }
    exits++;
    if (run->exit_reason != KVM_EXIT_IO) {
      fprintf(stderr, "exit-latency-ref: unexpected exit %u\n", run->exit_reason);
      return 1;
    }
    uint8_t value = *((uint8_t *)run + run->io.data_offset);
    if (run->io.port == 0xf4) break;
    sink += value; /* dispatch the byte, as a device would */
  }
  double t1 = now_ns();
  printf("{\"exits\":%lu,\"ns\":%.0f,\"sink\":%lu}\n", exits, t1 - t0, sink & 1);
  return 0;
}
