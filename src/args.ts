/**
 * `--opt -2` as `--opt=-2`: Node's parseArgs takes a value that starts with
 * a dash for an option and refuses it with a three-line hint; this way a
 * negative number reaches the option's own one-line range check. Every
 * subcommand with numeric options passes its arguments through this.
 */
export function joinNegativeValues(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const next = args[i + 1];
    if (/^--[a-z-]+$/.test(args[i]!) && next !== undefined && /^-[0-9.]/.test(next)) out.push(`${args[i]}=${args[++i]}`);
    else out.push(args[i]!);
  }
  return out;
}
