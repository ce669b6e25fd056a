import type { IncomingMessage, ServerResponse } from 'node:http';

/** Small HTTP helpers for serve's routes. */
export const INVALID = Symbol('invalid body');

const MAX_BODY = 4 * 1024 * 1024;

/** A JSON request body, or INVALID after answering 413 (too large) or 400 (not JSON). */
export async function readJson(req: IncomingMessage, res: ServerResponse): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) {
      reply(res, 413, { error: 'request too large' });
      return INVALID;
    }
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    reply(res, 400, { jsonrpc: '2.0', error: { code: -32700, message: 'Parse error' }, id: null });
    return INVALID;
  }
}

export function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
}

export function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** A session id as logs show it. */
export const short = (id: string) => id.slice(0, 8);
