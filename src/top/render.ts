import type { TopSample } from './rates.js';

const STATE_LABELS: Record<string, string> = {
  'in-guest': 'in guest',
  'in-vmm': 'in VMM',
  halted: 'halted',
  paused: 'paused',
  starting: 'starting',
  exited: 'exited',
};

/** A rate in at most 6 characters: 12, 1.2k, 12.3k, 1.23M. */
export function shortRate(n: number | null): string {
  if (n === null) return '-';
  if (n < 10) return n === 0 ? '0' : n.toFixed(1);
  if (n < 1e4) return Math.round(n).toString();
  if (n < 1e6) return `${(n / 1e3).toFixed(n < 1e5 ? 1 : 0)}k`;
  return `${(n / 1e6).toFixed(2)}M`;
}

const pct = (x: number): string => `${Math.round(x * 100)}%`.padStart(5);

/** The exit reasons of one vCPU, busiest first, as "Io 12k Mmio 300". */
function topReasons(byReason: Record<string, number>, limit: number): string {
  return Object.entries(byReason)
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([r, n]) => `${r} ${shortRate(n)}`)
    .join('  ');
}

/** One screen of `nodevisor top` (plain text; the caller clears the terminal). */
export function renderTop(s: TopSample, title: string): string {
  const lines: string[] = [];
  lines.push(`nodevisor top  ${title}  ${s.state}  irqchip ${s.irqchip}  ${s.vcpus.length} vCPU${s.vcpus.length === 1 ? '' : 's'}  per second over ${s.intervalSeconds.toFixed(1)} s`);
  lines.push('');
  lines.push(`${'vCPU'.padStart(4)}  ${'state'.padEnd(8)}  ${'exits'.padStart(6)}  ${'irqs'.padStart(6)}  ${'IPI tx'.padStart(6)}  ${'IPI rx'.padStart(6)}  ${'guest'.padStart(5)}  ${'VMM'.padStart(5)}  ${'halt'.padStart(5)}  ${'pause'.padStart(5)}  exits by reason`);
  for (const v of s.vcpus) {
    lines.push(
      [
        String(v.index).padStart(4),
        (STATE_LABELS[v.state] ?? v.state).padEnd(8),
        shortRate(v.exitsPerSecond).padStart(6),
        shortRate(v.injectionsPerSecond).padStart(6),
        shortRate(v.ipisSentPerSecond).padStart(6),
        shortRate(v.ipisReceivedPerSecond).padStart(6),
        pct(v.time.guest),
        pct(v.time.vmm),
        pct(v.time.halt),
        pct(v.time.paused),
        topReasons(v.exitsByReasonPerSecond, 4),
      ].join('  '),
    );
  }
  if (s.virtio.length) {
    lines.push('');
    lines.push(`${'virtio device'.padEnd(22)}  ${'reqs'.padStart(6)}  ${'notify'.padStart(6)}  ${'exits'.padStart(6)}`);
    for (const d of s.virtio) {
      const name = `${d.name} 00:${d.device.toString(16).padStart(2, '0')}.0`;
      lines.push(`${name.padEnd(22)}  ${shortRate(d.requestsPerSecond).padStart(6)}  ${shortRate(d.notificationsPerSecond).padStart(6)}  ${shortRate(d.notificationExitsPerSecond).padStart(6)}`);
    }
  }
  if (s.irqchip !== 'user') lines.push('', `"-": not seen by nodevisor with the ${s.irqchip} irqchip (KVM ${s.irqchip === 'kernel' ? 'injects interrupts and carries IPIs' : 'carries IPIs'} itself)`);
  return lines.join('\n');
}
