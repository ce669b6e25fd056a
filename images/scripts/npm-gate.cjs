// The supply-chain gates of an npm install (src/install/gates.ts reads what this prints). Runs inside
// the install container, before anything is installed, with npm's own semver and npm-package-arg:
//   node -e "$npm_gate_js" times CUTOFF SPEC...   → {"before":…,"packages":[…]} on stdout
//     The release-age cooldown: for each spec, the newest version it would get without the cooldown
//     and its age, or the publish time of an exact pin. `before` is the cutoff, moved to just after
//     the youngest exact pin (a pin is honoured as written; its dependencies resolve as of its release).
//   node -e "$npm_gate_js" verify POLICY NAME...  → {"keys":…,"verified":…,…} on stdout, exit 3 = refuse
//     Registry signatures (ECDSA over name@version:integrity, as `npm audit signatures` checks them)
//     of every package in ./package-lock.json, and whether each carries a provenance attestation.
// Also runnable as a file (`node npm-gate.cjs …`), which is how the unit tests run it.
'use strict';
const { execFileSync } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

const args = process.argv.slice(require.main ? 2 : 1);
const registry = (process.env.npm_config_registry || 'https://registry.npmjs.org/').replace(/\/?$/, '/');

function npmModule(name) {
  const root = execFileSync('npm', ['root', '-g'], { encoding: 'utf8' }).trim();
  return require(path.join(root, 'npm', 'node_modules', name));
}

// A flaky proxy or registry is retried as npm retries its own fetches (it waits 10 s, then up to
// 60 s): a network error, a 429 or a 5xx, after 1, 3 and 8 s. Any other answer is final.
const RETRY_AFTER_MS = [1000, 3000, 8000];

async function getJson(url, accept) {
  for (let attempt = 0; ; attempt++) {
    let response;
    try {
      response = await fetch(url, { headers: { accept: accept || 'application/json' } });
    } catch (error) {
      if (attempt >= RETRY_AFTER_MS.length) throw error;
    }
    if (response) {
      if (response.status === 404) return undefined;
      if (response.ok) return await response.json();
      const transient = response.status === 429 || response.status >= 500;
      if (!transient || attempt >= RETRY_AFTER_MS.length) throw new Error(`${url}: HTTP ${response.status}`);
    }
    await new Promise((resolve) => setTimeout(resolve, RETRY_AFTER_MS[attempt]));
  }
}

const escapeName = (name) => name.replace('/', '%2f');

async function times(cutoff, specs) {
  const npa = npmModule('npm-package-arg');
  const semver = npmModule('semver');
  let before = Date.parse(cutoff);
  const packages = [];
  for (const spec of specs) {
    const parsed = npa(spec);
    const doc = await getJson(registry + escapeName(parsed.name));
    if (!doc) {
      packages.push({ name: parsed.name, spec, missing: true });
      continue;
    }
    const published = doc.time || {};
    if (parsed.type === 'version') {
      const time = published[parsed.fetchSpec];
      packages.push({ name: parsed.name, spec, pinned: parsed.fetchSpec, time });
      if (time && Date.parse(time) + 1000 > before) before = Date.parse(time) + 1000;
      continue;
    }
    const versions = Object.keys(doc.versions || {});
    const tags = doc['dist-tags'] || {};
    const newest = parsed.type === 'tag' ? tags[parsed.fetchSpec] : semver.maxSatisfying(versions, parsed.fetchSpec || '*');
    packages.push({ name: parsed.name, spec, newest, time: newest && published[newest] });
  }
  return { cutoff, before: new Date(before).toISOString(), packages };
}

/** The registry's keys, by keyid, as public keys; undefined when the registry serves none. */
async function registryKeys() {
  const body = await getJson(`${registry}-/npm/v1/keys`);
  if (!body || !Array.isArray(body.keys) || body.keys.length === 0) return undefined;
  const keys = new Map();
  for (const key of body.keys) {
    keys.set(key.keyid, { expires: key.expires ? Date.parse(key.expires) : undefined, key: crypto.createPublicKey({ key: Buffer.from(key.key, 'base64'), format: 'der', type: 'spki' }) });
  }
  return keys;
}

async function verify(policy, requested) {
  const lock = JSON.parse(fs.readFileSync('package-lock.json', 'utf8'));
  const entries = [];
  for (const [at, entry] of Object.entries(lock.packages || {})) {
    if (at === '' || entry.inBundle || entry.link || !entry.version) continue;
    entries.push({ name: entry.name || at.slice(at.lastIndexOf('node_modules/') + 13), version: entry.version, integrity: entry.integrity });
  }
  const keys = await registryKeys();
  const result = { keys: keys ? keys.size : 0, packages: entries.length, verified: 0, unsigned: [], invalid: [], attested: [] };
  let next = 0;
  const worker = async () => {
    while (next < entries.length) {
      const entry = entries[next++];
      const id = `${entry.name}@${entry.version}`;
      const manifest = await getJson(`${registry}${escapeName(entry.name)}/${entry.version}`);
      const dist = (manifest && manifest.dist) || {};
      if (dist.attestations && dist.attestations.provenance) result.attested.push(id);
      if (!keys) continue;
      const signatures = Array.isArray(dist.signatures) ? dist.signatures : [];
      if (signatures.length === 0) {
        result.unsigned.push(id);
        continue;
      }
      const data = Buffer.from(`${id}:${dist.integrity}`);
      const good = dist.integrity === entry.integrity && signatures.some((s) => {
        const key = keys.get(s.keyid);
        if (!key || (key.expires !== undefined && key.expires < Date.now())) return false;
        try {
          return crypto.verify('sha256', data, key.key, Buffer.from(s.sig, 'base64'));
        } catch {
          return false;
        }
      });
      if (good) result.verified++;
      else result.invalid.push(id);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  for (const list of [result.unsigned, result.invalid, result.attested]) list.sort();
  const refusal = refuse(policy, result, requested);
  if (refusal) process.stderr.write(`mcpbox: ${refusal}\n`);
  return { result, refused: Boolean(refusal) };
}

/** The policy (src/install/gates.ts documents it): invalid signatures always refuse; `require` wants everything. */
function refuse(policy, result, requested) {
  if (result.invalid.length > 0) return `registry signature check failed for ${result.invalid.join(', ')}: refusing to install (the registry or a proxy between serves something it did not sign)`;
  if (policy !== 'require') return undefined;
  if (result.keys === 0) return 'provenance policy "require": the registry serves no signing keys, so nothing can be verified; refusing to install';
  if (result.unsigned.length > 0) return `provenance policy "require": ${result.unsigned.length} package(s) carry no registry signature (${result.unsigned.slice(0, 3).join(', ')}…); refusing to install`;
  const bare = requested.filter((name) => !result.attested.some((id) => id.slice(0, id.lastIndexOf('@')) === name));
  if (bare.length > 0) return `provenance policy "require": ${bare.join(', ')} carries no provenance attestation; refusing to install`;
  return undefined;
}

(async () => {
  const [phase, first, ...rest] = args;
  if (phase === 'times') {
    process.stdout.write(`${JSON.stringify(await times(first, rest))}\n`);
  } else if (phase === 'verify') {
    const { result, refused } = await verify(first, rest);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exitCode = refused ? 3 : 0;
  } else {
    throw new Error(`npm-gate: unknown phase ${phase}`);
  }
})().catch((error) => {
  // fetch() says only "fetch failed"; its cause names the TLS or network error.
  const cause = error.cause ? ` (${error.cause.code || error.cause.message})` : '';
  process.stderr.write(`mcpbox: the supply-chain check could not read the registry: ${error.message}${cause}\n`);
  process.exitCode = 1;
});
