// Benchmark: time to the Overview's first paint and to hydration in Chromium,
// for each console given, with an empty cache (a first visit) and a warm one
// (a return visit), plus the bytes of JS and WASM each visit transferred.
//
// First contentful paint comes from the browser's paint timing; hydration is
// the `pgc-hydrated` User Timing mark the front end sets once the page is
// interactive. Each target is logged in once; every sample is a fresh page.
//
// Usage (scripts/bench paint passes these):
//   node bench/paint.js --target 'label|URL|user|password' [--target ...] [--visits 20]
// The browser's HOME (with an NSS database trusting the edge's CA) is
// PGC_BENCH_HOME; nothing is skipped in certificate checks.
const { chromium } = require('@playwright/test');

function args() {
  const a = { targets: [], visits: 20 };
  const v = process.argv.slice(2);
  for (let i = 0; i < v.length; i += 2) {
    const [k, x] = [v[i], v[i + 1]];
    if (k === '--target') {
      const [label, url, user, password] = x.split('|');
      a.targets.push({ label, url, user, password });
    } else if (k === '--visits') a.visits = Number(x);
    else throw new Error(`unknown argument ${k}`);
  }
  if (!a.targets.length || a.targets.some((t) => !t.password)) throw new Error("need --target 'label|URL|user|password'");
  return a;
}

function pct(xs, p) {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.max(0, Math.min(s.length - 1, Math.round((p / 100) * (s.length - 1))))];
}

async function visit(context, url) {
  const page = await context.newPage();
  await page.goto(url + '/', { waitUntil: 'load' });
  await page.waitForFunction(() => performance.getEntriesByName('pgc-hydrated').length > 0, null, { timeout: 30_000 });
  const m = await page.evaluate(() => {
    const fcp = performance.getEntriesByName('first-contentful-paint')[0];
    const hyd = performance.getEntriesByName('pgc-hydrated')[0];
    const assets = performance.getEntriesByType('resource').filter((r) => /\.(js|wasm)$/.test(new URL(r.name).pathname));
    return {
      fcp: fcp ? fcp.startTime : NaN,
      hydrated: hyd.startTime,
      bytes: assets.reduce((n, r) => n + r.transferSize, 0),
    };
  });
  if (!page.url().startsWith(url + '/') || page.url().includes('/login')) throw new Error(`not logged in at ${url}`);
  await page.close();
  return m;
}

async function login(context, url, user, password) {
  const page = await context.newPage();
  await page.goto(url + '/login');
  await page.fill('input[name=username]', user);
  await page.fill('input[name=password]', password);
  await page.click('button[type=submit]');
  await page.waitForSelector('[data-testid=whoami]');
  await page.close();
}

async function main() {
  const a = args();
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
    env: { ...process.env, HOME: process.env.PGC_BENCH_HOME || process.env.HOME },
  });
  const rows = [];
  for (const t of a.targets) {
    const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
    await login(context, t.url, t.user, t.password);
    const cdp = await context.newCDPSession(await context.newPage());
    for (const cache of ['empty cache', 'warm cache']) {
      const samples = [];
      for (let i = 0; i < a.visits; i++) {
        if (cache === 'empty cache') await cdp.send('Network.clearBrowserCache');
        samples.push(await visit(context, t.url));
      }
      const f = samples.map((s) => s.fcp), h = samples.map((s) => s.hydrated);
      rows.push({
        scenario: `${t.label}, ${cache}`, visits: a.visits,
        fcp_p50_ms: pct(f, 50), fcp_p90_ms: pct(f, 90), hydrated_p50_ms: pct(h, 50), hydrated_p90_ms: pct(h, 90),
        js_wasm_kb: Math.round(pct(samples.map((s) => s.bytes), 50) / 1024),
      });
    }
    await context.close();
  }
  await browser.close();
  const w = Math.max(...rows.map((r) => r.scenario.length));
  console.log(`${'scenario'.padEnd(w)} visits | first paint p50    p90 | hydrated p50    p90 | JS+WASM transferred`);
  for (const r of rows) {
    const ms = (x) => `${x.toFixed(0)}ms`.padStart(7);
    console.log(`${r.scenario.padEnd(w)} ${String(r.visits).padStart(6)} | ${ms(r.fcp_p50_ms).padStart(15)} ${ms(r.fcp_p90_ms)} | `
      + `${ms(r.hydrated_p50_ms).padStart(12)} ${ms(r.hydrated_p90_ms)} | ${String(r.js_wasm_kb).padStart(8)} KB`);
  }
  if (rows.length >= 4) {
    console.log(`ratio (${rows[2].scenario} / ${rows[0].scenario}), hydrated p50: ${(rows[2].hydrated_p50_ms / rows[0].hydrated_p50_ms).toFixed(1)}x`);
  }
  console.log(JSON.stringify(rows));
}

main().catch((e) => { console.error(e); process.exit(1); });
