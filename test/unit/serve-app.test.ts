import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import { ServeApp } from '../../src/serve/app.js';
import { tokenDigest } from '../../src/serve/auth.js';
import type { ContainerChannel } from '../../src/serve/channel.js';
import { parseServeConfig } from '../../src/serve/config.js';
import type { ServedTarget } from '../../src/serve/prepare.js';

const TOKEN = `tok-${'0123abcd'.repeat(4)}`;

/** A session's container that answers initialize, and whose removal takes as long as the test says. */
function slowToGo() {
  let gone!: () => void;
  const removal = new Promise<void>((resolve) => (gone = resolve));
  let closes = 0;
  const channel = {
    name: 'mcpbox-serve-fake-000000',
    running: true,
    onmessage: undefined as ((message: JSONRPCMessage) => void) | undefined,
    onclose: undefined as (() => void) | undefined,
    send(message: JSONRPCMessage) {
      if ('method' in message && message.method === 'initialize' && 'id' in message) {
        const result = { protocolVersion: '2025-06-18', capabilities: {}, serverInfo: { name: 'fake', version: '0' } };
        setImmediate(() => channel.onmessage?.({ jsonrpc: '2.0', id: message.id, result }));
      }
    },
    close: () => {
      closes++;
      return removal;
    },
  };
  return { channel, gone, closes: () => closes };
}

describe('serve shutdown', () => {
  let app: ServeApp | undefined;
  afterEach(() => {
    app?.http.closeAllConnections();
    app?.http.close();
  });

  it('waits for a session already on its way out (its container not yet gone), not only the open ones', async () => {
    const fake = slowToGo();
    const config = parseServeConfig({ authTokens: [TOKEN], mcpServers: { fake: { command: 'npx', args: ['-y', 'fake-server'] } } }, 'servers.json', {});
    const target: ServedTarget = { server: config.servers[0]!, tokens: [tokenDigest(TOKEN)], container: () => fake.channel as unknown as ContainerChannel };
    app = new ServeApp({ targets: new Map([['fake', target]]), config, graceMs: 1000, log: () => {}, bindHost: '127.0.0.1' });
    await new Promise<void>((resolve) => app!.http.listen(0, '127.0.0.1', resolve));
    const { port } = app.http.address() as AddressInfo;
    const transport = new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/servers/fake/mcp`), { requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } } });
    const client = new Client({ name: 'serve-app-test', version: '0' });
    await client.connect(transport);
    // The client ends its session: serve answers at once, and the container's removal begins.
    await transport.terminateSession();
    await client.close();
    expect([app.sessionCount, fake.closes()]).toEqual([0, 1]);

    let stopped = false;
    const shutdown = app.shutdown().then(() => (stopped = true));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(stopped).toBe(false);
    fake.gone();
    await shutdown;
    expect(stopped).toBe(true);
  });
});
