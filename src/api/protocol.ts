/**
 * The API socket's wire protocol: JSON-RPC 2.0, one JSON object per line
 * (UTF-8, `\n`-terminated) in both directions. The server greets each
 * client with a `hello` notification carrying PROTOCOL_VERSION; a change
 * that breaks clients bumps it. Events reach subscribers as `event`
 * notifications. See README "API socket" for the reference.
 */
import type { Vm } from '../vm/vm.js';

export const PROTOCOL_VERSION = 1;

/** Longest request line accepted (bytes); longer ones get an error and are skipped. */
export const MAX_MESSAGE_BYTES = 1 << 20;

export const EVENT_NAMES = ['stop', 'console', 'panic'] as const;
export type EventName = (typeof EVENT_NAMES)[number];

/** JSON-RPC 2.0 error codes (the spec's, and one of ours in its server-error range). */
export const ErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** The VM cannot do that now (e.g. pause a stopped VM); `data.code` is nodevisor's error code. */
  VmState: -32000,
} as const;

/** What the API needs of a VM (a `Vm`; tests pass a fake). */
export type ApiVm = Pick<
  Vm,
  'vcpus' | 'memorySize' | 'irqchip' | 'runState' | 'stats' | 'exitProfile' | 'pause' | 'resume' | 'snapshot' | 'stop' | 'powerButton' | 'sendConsoleInput' | 'on' | 'off'
>;

/** The `hello` notification's params. */
export interface Hello {
  protocol: number;
  nodevisor: string;
  commands: string[];
}
