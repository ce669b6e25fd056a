import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Bearer tokens, compared in constant time: every allowed token is compared (no early exit), and
 * on digests of equal length (no length leak). The digest identifies a token without holding it, so
 * a session can be tied to the token that opened it and logs never need the token.
 */
export function tokenDigest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

export function bearerToken(authorization: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  return match?.[1];
}

/** The digest of the allowed token the request carries, or undefined. */
export function authorize(authorization: string | undefined, allowed: readonly Buffer[]): Buffer | undefined {
  const token = bearerToken(authorization);
  const candidate = tokenDigest(token ?? '');
  let found: Buffer | undefined;
  for (const digest of allowed) {
    if (timingSafeEqual(candidate, digest) && token !== undefined) found = digest;
  }
  return found;
}
