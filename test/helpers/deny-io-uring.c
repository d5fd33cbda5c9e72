/*
 * deny-io-uring ERRNO PROGRAM [ARGS...]: runs PROGRAM with io_uring_setup(2)
 * failing with ERRNO (EPERM or ENOSYS), as under sysctl
 * kernel.io_uring_disabled=2, a container runtime's seccomp profile or a
 * kernel without io_uring, without changing anything for other processes.
 * A seccomp filter; no privileges needed (PR_SET_NO_NEW_PRIVS).
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 3 || (strcmp(argv[1], "EPERM") && strcmp(argv[1], "ENOSYS"))) {
    fprintf(stderr, "usage: deny-io-uring EPERM|ENOSYS PROGRAM [ARGS...]\n");
    return 64;
  }
  unsigned err = strcmp(argv[1], "EPERM") ? ENOSYS : EPERM;
  struct sock_filter filter[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (err & SECCOMP_RET_DATA)),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = { sizeof filter / sizeof filter[0], filter };
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
    perror("deny-io-uring: seccomp");
    return 70;
  }
  execvp(argv[2], argv + 2);
  perror("deny-io-uring: exec");
  return 127;
}
