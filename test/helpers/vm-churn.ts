/**
 * Run in a child process (`node --expose-gc vm-churn.js COUNT VCPUS
 * IMAGE`): creates COUNT VMs one after another in this one process, each
 * with RAM the host has touched, half of them powering off on their own
 * (the demo guest) and half stopped with `vm.stop()` (IMAGE, a guest that
 * spins), and prints as JSON what the process holds before the first and
 * after the last: threads, file descriptors, KVM and guest-RAM mappings,
 * RSS.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createVm } from '../../src/index.js';

export interface ProcessHoldings {
  threads: number;
  fds: number;
  /** Mappings and descriptors of KVM objects (anon_inode:kvm-vm, kvm-vcpu:N). */
  kvmMappings: number;
  kvmFds: number;
  /** Guest RAM mappings (memfd:nodevisor-ram). */
  ramMappings: number;
  rssMiB: number;
}

const TOUCHED = 16 * 1024 * 1024;

function holdings(): ProcessHoldings {
  const links = readdirSync('/proc/self/fd').map((f) => {
    try {
      return readlinkSync(`/proc/self/fd/${f}`);
    } catch {
      return '';
    }
  });
  const maps = readFileSync('/proc/self/maps', 'utf8').split('\n');
  return {
    threads: readdirSync('/proc/self/task').length,
    fds: links.length,
    kvmMappings: maps.filter((l) => /anon_inode:kvm/.test(l)).length,
    kvmFds: links.filter((l) => /kvm/.test(l)).length,
    ramMappings: maps.filter((l) => /nodevisor-ram/.test(l)).length,
    rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20),
  };
}

async function settle(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc');
  for (let i = 0; i < 5; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** One VM from start to stop; a function of its own, so that nothing of it stays reachable from the caller's frame. */
async function oneVm(i: number, vcpus: number, image: string): Promise<void> {
  const spin = i % 2 === 1;
  const vm = createVm({ vcpus, memory: '64M', ...(spin ? { image: { source: image, mode: 'long' as const } } : {}) });
  await vm.start();
  vm.memory.fill(0x1000000, TOUCHED, 0xa5);
  const result = spin ? await vm.stop() : await vm.wait();
  if (result.reason.kind !== (spin ? 'stopped' : 'poweroff')) throw new Error(`VM ${i}: ${result.message}`);
}

const [count = '20', vcpus = '1', image = ''] = process.argv.slice(2);
await oneVm(0, Number(vcpus), image); // module and code caches, allocator pools
await settle();
const before = holdings();
for (let i = 0; i < Number(count); i++) await oneVm(i, Number(vcpus), image);
await settle();
process.stdout.write(`${JSON.stringify({ before, after: holdings() })}\n`);
