/**
 * Metric-id patterns, as `--only` and `--tolerance` take them: a pattern
 * names a metric id or any dotted prefix of one, so "micro.ipi-rtt" covers
 * "micro.ipi-rtt.user" but not "micro.ipi-rttx", and "micro.ipi-rtt.user"
 * does not cover "micro.ipi-rtt.user-vs-kernel".
 */
export function matchesId(id: string, pattern: string): boolean {
  return id === pattern || id.startsWith(`${pattern}.`);
}

/** True when `id` is selected by `only` (every id is when `only` is absent or empty). */
export function isSelected(id: string, only?: readonly string[]): boolean {
  return !only || only.length === 0 || only.some((p) => matchesId(id, p));
}

/**
 * True when some metric of `suite` (or of any dotted group, such as
 * "scaling.compute") could be selected by `only`: a pattern inside it
 * ("micro.wake") or one covering it ("micro").
 */
export function suiteSelected(suite: string, only?: readonly string[]): boolean {
  return !only || only.length === 0 || only.some((p) => matchesId(p, suite) || matchesId(suite, p));
}

/** The longest pattern that covers `id`, for "most specific wins" overrides. */
export function mostSpecific<T>(id: string, byPattern: ReadonlyMap<string, T>): T | undefined {
  let best: string | undefined;
  for (const p of byPattern.keys()) if (matchesId(id, p) && (best === undefined || p.length > best.length)) best = p;
  return best === undefined ? undefined : byPattern.get(best);
}

/** The vCPU counts of a scaling run: 1, 2, 4, ... below `max`, then `max`. */
export function vcpuCounts(max: number): number[] {
  if (!Number.isInteger(max) || max < 1) throw new Error(`maxVcpus must be a positive integer (got ${max})`);
  const counts: number[] = [];
  for (let n = 1; n < max; n *= 2) counts.push(n);
  counts.push(max);
  return counts;
}
