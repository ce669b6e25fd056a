import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalEntry, validEgressEntry } from '../egress/policy.js';
import { UsageError } from '../errors.js';
import { editEgress, egressLists } from '../install/learned.js';
import { findLock } from '../install/lock-files.js';
import { stateDir } from '../paths.js';
import type { CommandContext } from './context.js';

/**
 * `mcpbox egress [pkg]` shows what each server may reach (learned in its first session, or edited);
 * `--log` the proxy's decisions (allowed, refused) from the audit log. `mcpbox allow|deny pkg HOST…`
 * edit the lists.
 */
export function egress(pkg: string | undefined, flags: { log?: boolean; json?: boolean }, ctx: CommandContext): number {
  const state = stateDir(ctx.env);
  if (flags.log) return showLog(pkg, flags, state, ctx);
  const lists = egressLists({ lockPath: findLock(ctx.cwd, state).path, stateDir: state }).filter((l) => !pkg || l.server === pkg || l.server.split(' ').includes(pkg));
  if (flags.json) {
    ctx.stdout.write(`${JSON.stringify(lists, null, 2)}\n`);
    return 0;
  }
  if (lists.length === 0) {
    ctx.log.info(pkg ? `no egress list for ${pkg} yet: its first session (egress learn) makes one` : 'no egress lists yet: each server learns its own in its first session');
    return 0;
  }
  for (const list of lists) ctx.stdout.write(`${list.server}: ${list.hosts.length > 0 ? list.hosts.join(', ') : '(no host)'}\n  in ${list.where}\n`);
  return 0;
}

function showLog(pkg: string | undefined, flags: { json?: boolean }, state: string, ctx: CommandContext): number {
  const lines = ['egress.log.1', 'egress.log'].flatMap((name) => {
    try {
      return readFileSync(join(state, name), 'utf8').split('\n').filter(Boolean);
    } catch {
      return [];
    }
  });
  const events = lines
    .map((line) => {
      try {
        return JSON.parse(line) as { t: string; server: string; host: string; port: number; action: string; reason?: string };
      } catch {
        return undefined;
      }
    })
    .filter((e): e is NonNullable<typeof e> => e !== undefined && (!pkg || e.server === pkg));
  if (flags.json) ctx.stdout.write(`${JSON.stringify(events, null, 2)}\n`);
  else for (const e of events) ctx.stdout.write(`${e.t}  ${e.server}  ${e.action.padEnd(7)}  ${canonicalEntry(e.host, e.port)}${e.reason ? `  (${e.reason})` : ''}\n`);
  return 0;
}

export function allow(pkg: string, hosts: string[], ctx: CommandContext): number {
  return edit(pkg, hosts, 'allow', ctx);
}

export function deny(pkg: string, hosts: string[], ctx: CommandContext): number {
  return edit(pkg, hosts, 'deny', ctx);
}

function edit(pkg: string, hosts: string[], action: 'allow' | 'deny', ctx: CommandContext): number {
  const entries = hosts.map((h) => h.toLowerCase().replace(/:443$/, ''));
  const bad = entries.filter((h) => !validEgressEntry(h));
  if (entries.length === 0 || bad.length > 0) {
    throw new UsageError(bad.length > 0 ? `not a host: ${bad.join(', ')}` : `name the hosts to ${action}`, `e.g. mcpbox ${action} ${pkg} api.example.com *.example.net example.org:8443`);
  }
  const state = stateDir(ctx.env);
  const changed = editEgress({ lockPath: findLock(ctx.cwd, state).path, stateDir: state }, pkg, action === 'allow' ? entries : [], action === 'deny' ? entries : []);
  for (const where of changed) ctx.stdout.write(`${action === 'allow' ? 'allowed' : 'denied'} ${entries.join(', ')} for ${pkg} in ${where}\n`);
  return 0;
}
