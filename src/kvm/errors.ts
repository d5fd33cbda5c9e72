/**
 * Errors the user can act on. `code` is stable (tests and callers match on
 * it); the message says what happened and what to do about it.
 */
export class NodevisorError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'NodevisorError';
  }
}

/** The errno name of a native error, if it has one. */
export function errnoCode(e: unknown): string | undefined {
  if (e && typeof e === 'object' && 'code' in e && typeof (e as { code: unknown }).code === 'string') {
    return (e as { code: string }).code;
  }
  return undefined;
}

/** Explains a failure to open the KVM device node. */
export function kvmOpenError(path: string, e: unknown): NodevisorError {
  switch (errnoCode(e)) {
    case 'ENOENT':
    case 'ENODEV':
    case 'ENXIO':
      return new NodevisorError('ENOKVM', `${path} does not exist: this host has no KVM. Load the kvm_intel or kvm_amd module (or enable nested virtualisation for this VM) and try again.`, { cause: e });
    case 'EACCES':
    case 'EPERM':
      return new NodevisorError('EKVMPERM', `no permission to open ${path} read/write: add your user to its group (usually \`sudo usermod -aG kvm $USER\`, then log in again) or run as root.`, { cause: e });
    default:
      return new NodevisorError('EKVM', `cannot open ${path}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}
