import type { ExitProfileEntry } from '../vcpu/exit-profile.js';

/**
 * An exit profile for people: the `limit` entries with the most exits,
 * each with its share of all exits and the VMM's mean handling time, then
 * the total.
 */
export function formatExitProfile(entries: readonly ExitProfileEntry[], limit = 25): string {
  const total = entries.reduce((n, e) => n + e.exits, 0);
  if (total === 0) return 'no exits recorded';
  const rows = entries.slice(0, limit).map((e) => {
    const where = e.kind === 'exit' ? '' : e.kind === 'other' ? '(table full)' : `0x${e.address.toString(16)}`;
    const perExit = e.kind === 'exit' || e.kind === 'other' ? '' : (e.vmmNs / e.exits / 1000).toFixed(1);
    return [String(e.exits), `${((100 * e.exits) / total).toFixed(1)}%`, e.kind, where, e.device, perExit];
  });
  const head = ['exits', 'share', 'kind', 'address', 'device', 'VMM us/exit'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string => r.map((c, i) => (i < 2 || i === 5 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  const rest = entries.length > limit ? `\n(${entries.length - limit} more addresses: ${entries.slice(limit).reduce((n, e) => n + e.exits, 0)} exits)` : '';
  return `${[head, ...rows].map(line).join('\n')}${rest}\ntotal: ${total} exits`;
}
