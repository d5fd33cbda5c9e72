/* A user workload for `nodevisor bench linux --workload`: prints metric lines. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  const char *vcpus = getenv("NODEVISOR_VCPUS");
  printf("metric answer %s widgets higher\n", argc > 1 ? argv[1] : "0");
  printf("metric vcpus-seen %s cpus higher\n", vcpus ? vcpus : "-1");
  printf("metric latency 12.5 us lower\n");
  return 0;
}
