/**
 * The only way out of a server's container when its egress is enforced: the container has no network
 * (--network none), so a tiny forwarder inside it listens on 127.0.0.1:3128 (what HTTP(S)_PROXY
 * name) and relays each connection to the egress proxy's unix socket, after the run's token. Node or
 * Python, whichever the image has; with neither, the server has no network at all (fails closed).
 * The server can stop it (and then has no network) or talk to the socket itself (with its own token,
 * which gets it nothing more). Inline, so it needs nothing on the engine's disk.
 */
export const FORWARD_PORT = 3128;
export const EGRESS_DIR = '/mcpbox/egress';
const SOCKET = `${EGRESS_DIR}/proxy.sock`;

// The proxy may still be starting: each connection retries the socket for up to 10 s. One more
// connection, held open without a token, says "a server is here": the proxy exits only when no
// server has been running for its idle time, not when a running one has been quiet that long.
const NODE = [
  `(function k(){const p=require('net').connect(${JSON.stringify(SOCKET)});p.on('error',()=>{});p.on('close',()=>setTimeout(k,1000))})();`,
  "const net=require('net'),t=process.env.MCPBOX_EGRESS_TOKEN||'';",
  'net.createServer((c)=>{c.pause();c.on("error",()=>{});let n=0;const go=()=>{',
  `const u=net.connect(${JSON.stringify(SOCKET)});`,
  "u.once('connect',()=>{u.write('MCPBOX-EGRESS '+t+'\\n');c.pipe(u).pipe(c);c.resume()});",
  "u.on('error',()=>{if(!u.connecting&&u.bytesWritten)return c.destroy();if(++n<100)setTimeout(go,100);else c.destroy()})};go()})",
  `.listen(${FORWARD_PORT},'127.0.0.1')`,
].join('');

const PYTHON = [
  'import asyncio, os',
  "T = ('MCPBOX-EGRESS %s\\n' % os.environ.get('MCPBOX_EGRESS_TOKEN', '')).encode()",
  'async def pipe(a, b):',
  '    try:',
  '        while True:',
  '            d = await a.read(65536)',
  '            if not d: break',
  '            b.write(d); await b.drain()',
  '    except Exception: pass',
  '    try: b.write_eof()',
  '    except Exception: b.close()',
  'async def handle(r, w):',
  '    for _ in range(100):',
  '        try:',
  `            ur, uw = await asyncio.open_unix_connection(${JSON.stringify(SOCKET)}); break`,
  '        except OSError: await asyncio.sleep(0.1)',
  '    else:',
  '        w.close(); return',
  '    uw.write(T)',
  '    await asyncio.gather(pipe(r, uw), pipe(ur, w))',
  'async def presence():',
  '    while True:',
  '        try:',
  `            pr, pw = await asyncio.open_unix_connection(${JSON.stringify(SOCKET)})`,
  '            await pr.read()',
  '            pw.close()',
  '        except OSError: pass',
  '        await asyncio.sleep(1)',
  'async def main():',
  '    asyncio.get_running_loop().create_task(presence())',
  `    s = await asyncio.start_server(handle, '127.0.0.1', ${FORWARD_PORT})`,
  '    async with s: await s.serve_forever()',
  'asyncio.run(main())',
].join('\n');

const shellQuote = (text: string) => `'${text.replaceAll("'", `'\\''`)}'`;

/** The sh prelude that starts the forwarder in the background (a server command follows it). */
export function forwarderPrelude(): string {
  return (
    // Niced: the server's own start comes first (the forwarder is idle until the server connects).
    // None of the container's stdio: node makes the pipes it holds non-blocking, and the server (or an
    // install's report) writing to that same pipe would then fail with EAGAIN. It writes nothing anyway.
    `if command -v node >/dev/null 2>&1; then nice -n 19 node -e ${shellQuote(NODE)} </dev/null >/dev/null 2>&1 & ` +
    `elif command -v python3 >/dev/null 2>&1; then nice -n 19 python3 -I -c ${shellQuote(PYTHON)} </dev/null >/dev/null 2>&1 & ` +
    `else echo "mcpbox: this image has neither node nor python3 to reach the egress proxy: the server runs without network" >&2; fi;`
  );
}

/** What a server sees: every usual proxy variable points at the forwarder; only loopback bypasses it. */
export function proxyEnvironment(): Record<string, string> {
  const url = `http://127.0.0.1:${FORWARD_PORT}`;
  const local = 'localhost,127.0.0.1,::1';
  return {
    HTTP_PROXY: url,
    HTTPS_PROXY: url,
    http_proxy: url,
    https_proxy: url,
    ALL_PROXY: url,
    all_proxy: url,
    NO_PROXY: local,
    no_proxy: local,
    npm_config_proxy: url,
    npm_config_https_proxy: url,
    // Node's built-in fetch and http honour the proxy variables only with this (Node ≥ 22.21), which
    // otherwise warns, on every start of every node process, that it is experimental.
    NODE_USE_ENV_PROXY: '1',
    NODE_OPTIONS: '--disable-warning=UNDICI-EHPA',
  };
}
