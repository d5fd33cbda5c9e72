/**
 * `nodevisor ctl PATH COMMAND [ARGS...] [--json]`: one API command from a
 * shell. Exit status 0 when the command succeeded, 1 when the VM refused it
 * or could not be reached, 64 for a bad command line.
 */
import { parseArgs } from 'node:util';
import { JSONRPCErrorException } from 'json-rpc-2.0';
import { NodevisorError } from '../kvm/errors.js';
import { ApiClient } from './client.js';
import { COMMANDS, commandNamed } from './commands.js';

export class CtlUsageError extends Error {}

export const CTL_HELP = `Usage: nodevisor ctl PATH COMMAND [ARGS...] [--json]

Sends COMMAND to the VM whose API socket is PATH (nodevisor run --api-socket
PATH) and prints the answer. --json prints the JSON result instead (events
as one JSON object per line).

Commands:
${COMMANDS.map((c) => `  ${`${c.name}${c.args ? ` ${c.args}` : ''}`.padEnd(38)}${c.summary}`).join('\n')}

console-input takes \\n, \\r, \\t, \\e, \\\\ and \\xHH escapes. subscribe prints
events until the VM stops (console output as it comes).

Exit status: 0 done; 1 the VM refused the command or cannot be reached;
64 bad usage.`;

export async function ctlCommand(argv: string[], out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    out.write(`${CTL_HELP}\n`);
    return 0;
  }
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { json: { type: 'boolean' } } });
  const [path, name, ...words] = positionals;
  if (!path || !name) throw new CtlUsageError('ctl needs a socket path and a command (see nodevisor ctl --help)');
  const command = commandNamed(name);
  if (!command) throw new CtlUsageError(`unknown command "${name}": use one of ${COMMANDS.map((c) => c.name).join(', ')}`);
  if (words.length && !command.fromArgs) throw new CtlUsageError(`${name} takes no arguments`);
  const params = command.fromArgs ? command.fromArgs(words) : undefined;
  const json = values.json ?? false;
  return ApiClient.with(path, err, async (client) => {
    try {
      const stopped = name === 'subscribe' ? followEvents(client, out, json) : undefined;
      const result = await client.request(name, params);
      if (!stopped) out.write(`${json ? JSON.stringify(result) : command.show(result)}\n`);
      else if (!json) err.write(`nodevisor: ${command.show(result)}\n`);
      await stopped;
      return 0;
    } catch (e) {
      const detail = e instanceof JSONRPCErrorException || e instanceof NodevisorError ? e.message : (e as Error).message;
      err.write(`nodevisor: ${name}: ${detail}\n`);
      return 1;
    }
  });
}

/** Prints events until the VM stops or closes the connection. */
function followEvents(client: ApiClient, out: NodeJS.WritableStream, json: boolean): Promise<void> {
  return new Promise((resolve) => {
    client.on('event', (e: { event: string; data?: string; message?: string }) => {
      if (json) out.write(`${JSON.stringify(e)}\n`);
      else if (e.event === 'console') out.write(e.data ?? '');
      else out.write(`\n[${e.event}] ${e.message ?? ''}\n`);
      if (e.event === 'stop') resolve();
    });
    client.once('close', () => resolve());
  });
}
