import type { OfferedItem } from './pin.js';

/**
 * Obvious tool poisoning, flagged when a tool is pinned (#17): descriptions with instructions aimed
 * at the model, hidden characters, great length, or references to other servers' tools. A
 * heuristic: it catches the crude attacks published so far, not a careful one, and says so. Pure.
 */
export interface PoisonFinding {
  readonly tool: string;
  readonly reason: string;
}

const INSTRUCTIONS: readonly [RegExp, string][] = [
  [/\bignore\s+(?:all\s+|any\s+)?(?:previous|prior|above|earlier|other)\s+(?:instructions|prompts|rules)/i, 'tells the model to ignore its instructions'],
  [/\b(?:do\s+not|don't|never)\s+(?:tell|inform|mention|reveal|show|notify)\b[^.]{0,40}\buser\b/i, 'tells the model to hide something from the user'],
  [/<\s*\/?\s*(?:important|system|instructions?|secret)\s*>/i, 'carries tags that address the model'],
  [/\b(?:before|instead of)\s+(?:using|calling)\s+(?:any|the|other)\b[^.]{0,40}\btools?\b/i, "steers the model's use of other tools"],
  [/(?:~\/\.ssh|id_rsa|\.aws\/credentials|\.env\b|mcp\.json|claude_desktop_config)/i, 'names credential or client configuration files'],
];

// Zero-width and word-joiner characters, bidi controls, and Unicode tag characters: text the user doesn't see.
const HIDDEN: readonly [RegExp, string][] = [
  [/[\u200B-\u200F\u2060-\u2064\uFEFF]/u, 'holds zero-width characters'],
  [/[\u202A-\u202E\u2066-\u2069]/u, 'holds bidirectional control characters'],
  [/[\u{E0000}-\u{E007F}]/u, 'holds Unicode tag characters (invisible text)'],
];

/** Descriptions longer than this are unusual enough to say so. */
export const LONG_DESCRIPTION = 2000;

export function poisonFindings(tools: readonly OfferedItem[], otherServersTools: readonly string[] = []): PoisonFinding[] {
  const findings: PoisonFinding[] = [];
  const others = otherServersTools.filter((name) => name.length >= 4 && !tools.some((t) => t.name === name));
  for (const tool of tools) {
    const text = [String(tool.title ?? ''), tool.description ?? '', JSON.stringify(tool.inputSchema ?? tool.arguments ?? '')].join('\n');
    for (const [pattern, reason] of [...INSTRUCTIONS, ...HIDDEN]) if (pattern.test(text)) findings.push({ tool: tool.name, reason });
    if ((tool.description ?? '').length > LONG_DESCRIPTION) findings.push({ tool: tool.name, reason: `has a ${(tool.description ?? '').length}-character description` });
    const named = others.filter((name) => new RegExp(`\\b${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\b`).test(tool.description ?? ''));
    if (named.length > 0) findings.push({ tool: tool.name, reason: `refers to other servers' tools (${named.slice(0, 3).join(', ')})` });
  }
  return findings;
}
