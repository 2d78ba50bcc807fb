// Real-browser test of `diffuse serve`'s page (web/): Debian's Chromium driven by playwright-core.
//
//   node tests/browser/serve_ui.mjs --diffuse BUILD/diffuse --runs RUNS_DIR --out OUT_DIR
//
// Starts `diffuse serve --runs RUNS_DIR --port 0`, then: (a) the page loads its models, and a bad
// request shows the API's error; (b) a slow generation shows live previews and an advancing
// progress bar, then its images in the gallery; (c) a second job is cancelled; (d) a gallery image
// is inpainted after a mask stroke drawn with the mouse; (e) the final gallery. Screenshots go to
// OUT_DIR/serve_<state>.png; the server's output to OUT_DIR/serve.log. Exit code 0 only if all pass.
// Options: --chromium PATH (default /usr/bin/chromium), --headed, --step-timeout SECONDS (default 240).
import {spawn} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {createRequire} from 'node:module';

const require = createRequire(import.meta.url);
const {chromium} = require('playwright-core');

// ---------------------------------------------------------------- arguments
function parseArgs(argv) {
  const o = {chromium: '/usr/bin/chromium', headed: false, stepTimeout: 240};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--diffuse') o.diffuse = val();
    else if (a === '--runs') o.runs = val();
    else if (a === '--out') o.out = val();
    else if (a === '--chromium') o.chromium = val();
    else if (a === '--step-timeout') o.stepTimeout = Number(val());
    else if (a === '--headed') o.headed = true;
    else if (a === '-h' || a === '--help') usage();
    else usage(`unknown argument ${a}`);
  }
  if (!o.diffuse || !o.runs || !o.out) usage('--diffuse, --runs and --out are required');
  return o;
}

function usage(msg) {
  if (msg) console.error(`serve_ui: ${msg}`);
  console.error('usage: node tests/browser/serve_ui.mjs --diffuse PATH_TO_BINARY --runs RUNS_DIR --out OUT_DIR [--chromium PATH] [--headed] [--step-timeout S]');
  process.exit(2);
}

const opt = parseArgs(process.argv.slice(2));
fs.mkdirSync(opt.out, {recursive: true});
const T = opt.stepTimeout * 1000;

// ---------------------------------------------------------------- server
let server = null;
let serverExited = null;

function startServer() {
  return new Promise((resolve, reject) => {
    const log = fs.createWriteStream(path.join(opt.out, 'serve.log'));
    const child = spawn(opt.diffuse, ['serve', '--runs', opt.runs, '--port', '0'], {stdio: ['ignore', 'pipe', 'pipe']});
    server = child;
    let buf = '', tail = '', settled = false;
    const timer = setTimeout(() => {
      if (!settled) { settled = true; reject(new Error(`no "listening on" line within 180 s; output:\n${tail}`)); }
    }, 180000);
    const take = (chunk) => {
      const s = chunk.toString();
      log.write(s);
      tail = (tail + s).slice(-4000);
      if (settled) return;
      buf += s;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const m = /listening on (http:\/\/127\.0\.0\.1:\d+\/)/.exec(line);
        if (m) { settled = true; clearTimeout(timer); resolve(m[1]); return; }
      }
    };
    child.stdout.on('data', take);
    child.stderr.on('data', (c) => { log.write(c); tail = (tail + c.toString()).slice(-4000); });
    child.on('error', (e) => { if (!settled) { settled = true; clearTimeout(timer); reject(e); } });
    child.on('exit', (code, sig) => {
      serverExited = `server exited (code ${code}, signal ${sig})`;
      if (!settled) { settled = true; clearTimeout(timer); reject(new Error(`${serverExited} before listening; output:\n${tail}`)); }
    });
  });
}

async function stopServer() {
  const child = server;
  server = null;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(t);
}

process.on('exit', () => { if (server && server.exitCode === null) server.kill('SIGKILL'); });
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, async () => {
    console.error(`serve_ui: ${sig}`);
    await Promise.race([Promise.all([stopServer(), browser ? browser.close().catch(() => {}) : null]), new Promise((r) => setTimeout(r, 3000))]);
    process.exit(130);
  });
}

// ---------------------------------------------------------------- steps
const results = [];
let browser = null, page = null;

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

async function shot(name) {
  const file = path.join(opt.out, `serve_${name}.png`);
  await page.screenshot({path: file});
  return file;
}

async function step(name, fn) {
  const t0 = Date.now();
  try {
    const note = await fn();
    results.push({name, ok: true, seconds: (Date.now() - t0) / 1000, note: note || ''});
    console.log(`  ok    ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)${note ? ': ' + note : ''}`);
    return true;
  } catch (e) {
    results.push({name, ok: false, seconds: (Date.now() - t0) / 1000, note: e.message});
    console.log(`  FAIL  ${name}: ${e.message}`);
    if (serverExited) console.log(`        (${serverExited}; see ${path.join(opt.out, 'serve.log')})`);
    if (page) await page.screenshot({path: path.join(opt.out, `serve_fail_${name.split(' ')[0].replace(/[^a-z0-9]/gi, '') || 'step'}.png`)}).catch(() => {});
    return false;
  }
}

const galleryCount = () => page.locator('#gallery .gallery-item').count();
const statusText = () => page.locator('#status').innerText();
// The id of the job #status shows (null when idle).
const shownJob = () => page.evaluate(() => {
  const m = /job (\S+)/.exec(document.getElementById('status').textContent);
  return m ? m[1] : null;
});

// Clicks `sel` (a submit button) and waits for the job it started to reach one of `states`.
async function clickAndWait(sel, states, timeout) {
  const prev = await shownJob();
  await page.click(sel);
  return waitForState(states, timeout, prev);
}

// Waits until #status names one of the given states; fails early if the job failed or the
// page shows an error (a refused request). With `notJob`, a state counts only once #status
// names another job: right after a click the status still shows the previous job (say 'done')
// until the server has answered the submit.
async function waitForState(states, timeout, notJob = undefined) {
  const handle = await page.waitForFunction(
    ([states, notJob]) => {
      const st = document.getElementById('status');
      const s = st.dataset.state;
      if (notJob !== undefined) {
        const m = /job (\S+)/.exec(st.textContent);
        if ((m ? m[1] : null) === notJob) return false;
      }
      if (states.includes(s)) return s;
      if (s === 'failed') return 'failed';
      if (!document.getElementById('error').hidden) return 'error';
      return false;
    },
    [states, notJob], {timeout, polling: 50});
  const s = await handle.jsonValue();
  if (s === 'failed' || s === 'error') {
    const err = await page.locator('#error .error-body').innerText().catch(() => '');
    throw new Error(`${s === 'failed' ? 'the job failed' : 'the page shows an error'}: ${err.replace(/\s+/g, ' ').trim()}`);
  }
  return s;
}

async function setValue(sel, value) {
  await page.locator(sel).fill(String(value));
}

async function main() {
  console.log(`serve_ui: ${opt.diffuse} serve --runs ${opt.runs}`);
  const base = await startServer();
  console.log(`serve_ui: server at ${base}`);
  browser = await chromium.launch({
    executablePath: opt.chromium,
    headless: !opt.headed,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({viewport: {width: 1280, height: 800}, acceptDownloads: false});
  page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  // Failed requests (the deliberate 400 of step a) are logged too: only script errors count.
  page.on('console', (m) => { if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) pageErrors.push(`console: ${m.text()}`); });
  page.setDefaultTimeout(30000);

  let modelInfo = null;
  const batch = 4;
  let ok = await step('(a) page loads the models', async () => {
    await page.goto(base, {waitUntil: 'load'});
    await page.waitForFunction(() => document.body.dataset.ready === '1' || document.getElementById('status').dataset.state === 'failed', null, {timeout: 60000});
    const models = await page.locator('#model option').count();
    assert(models > 0, 'the model list is empty');
    modelInfo = await page.evaluate(() => ({
      model: document.getElementById('model').value,
      classes: [...document.getElementById('class').options].map((o) => o.value),
      samplers: [...document.getElementById('sampler').options].map((o) => o.value),
      methods: [...document.getElementById('method').options].map((o) => o.value),
    }));
    assert(modelInfo.samplers.includes('ddpm'), `no ddpm sampler in ${modelInfo.samplers.join(', ')}`);
    assert(modelInfo.methods.includes('repaint'), `no repaint method in ${modelInfo.methods.join(', ')}`);
    assert(await page.locator('#error').isHidden(), `an error is shown: ${await page.locator('#error').innerText()}`);
    // A bad request (steps 0) shows the API's error, naming the field.
    await setValue('#steps', 0);
    await page.click('#generate');
    await page.locator('#error').waitFor({state: 'visible', timeout: 15000});
    const err = (await page.locator('#error .error-body').innerText()).replace(/\s+/g, ' ').trim();
    assert(/steps/i.test(err), `the error does not name steps: ${err}`);
    await shot('error');
    await page.click('#error-close');
    await page.locator('#error').waitFor({state: 'hidden'});
    await shot('loaded');
    return `model ${modelInfo.model}, ${models} model(s), ${modelInfo.classes.length - 1} classes; error shown: "${err}"`;
  });

  if (ok) ok = await step('(b) generate with live previews', async () => {
    const before = await galleryCount();
    await page.selectOption('#sampler', 'ddpm');
    if (modelInfo.classes.length > 1) await page.selectOption('#class', modelInfo.classes[1]);
    await setValue('#steps', await page.evaluate(() => Math.min(200, Number(document.getElementById('steps').max) || 200)));
    await setValue('#batch', batch);
    await setValue('#seed', 1234);
    // Record every change of the live preview and of the progress bar.
    await page.evaluate(() => {
      const rec = window.__rec = {previews: [], progress: []};
      const prev = document.getElementById('preview'), bar = document.getElementById('progress');
      new MutationObserver(() => {
        if (prev.dataset.kind === 'live') rec.previews.push(prev.getAttribute('src'));
      }).observe(prev, {attributes: true, attributeFilter: ['src']});
      new MutationObserver(() => {
        if (document.getElementById('status').dataset.state === 'running') rec.progress.push([bar.value, bar.max]);
      }).observe(bar, {attributes: true, attributeFilter: ['value', 'max']});
    });
    await clickAndWait('#generate', ['queued', 'running', 'done'], 30000);
    // Mid-sampling screenshot, at a live preview about a third of the way (a tiny model may take
    // only a second: then whatever is running).
    let mid = 'missed (the job was too quick)';
    try {
      await page.waitForFunction(() => {
        const st = document.getElementById('status').dataset.state;
        if (['done', 'failed', 'cancelled'].includes(st)) return true;
        const bar = document.getElementById('progress');
        return st === 'running' && document.getElementById('preview').dataset.kind === 'live' && bar.value >= 0.3 * bar.max;
      }, null, {timeout: T, polling: 10});
      if (await page.evaluate(() => document.getElementById('status').dataset.state) === 'running') {
        const p = await page.evaluate(() => document.getElementById('progress-text').textContent);
        await shot('sampling');
        mid = `at "${p}"`;
      }
    } catch (e) { /* judged below */ }
    await waitForState(['done'], T);
    const rec = await page.evaluate(() => window.__rec);
    const distinct = new Set(rec.previews.filter((s) => s && s.startsWith('data:image/png'))).size;
    assert(distinct >= 2, `the live preview changed ${distinct} time(s) during sampling (want ≥ 2)`);
    const values = rec.progress.map(([v, m]) => v / m).filter((f) => f > 0 && f < 1);
    const increasing = values.filter((v, i) => i === 0 || v > values[i - 1]).length;
    assert(increasing >= 2, `the progress bar advanced ${increasing} time(s) while running (want ≥ 2)`);
    await page.waitForFunction((n) => document.querySelectorAll('#gallery .gallery-item').length >= n, before + batch, {timeout: 10000});
    const after = await galleryCount();
    assert(after === before + batch, `the gallery has ${after} items, want ${before} + ${batch}`);
    const seeds = await page.$$eval('#gallery .gallery-item', (els, n) => els.slice(0, n).map((e) => [e.dataset.seed, e.dataset.job]), batch);
    assert(seeds.every(([s, j]) => s !== undefined && j), 'gallery items lack data-seed or data-job');
    assert(seeds.map(([s]) => Number(s)).join(',') === Array.from({length: batch}, (_, k) => 1234 + k).join(','),
      `seeds ${seeds.map(([s]) => s).join(', ')}, want 1234 … ${1233 + batch}`);
    const imgs = await page.$$eval('#gallery .gallery-item img', (els) => els.map((e) => e.complete && e.naturalWidth > 0));
    assert(imgs.every(Boolean), 'a gallery image did not load');
    await shot('done');
    return `${distinct} previews, progress advanced ${increasing}×, mid-sampling screenshot ${mid}; gallery ${before} → ${after}`;
  });

  if (ok) ok = await step('(c) cancel a running job', async () => {
    // The longest job the model takes (all its T steps, up to 1000, × batch 16), cancelled as soon
    // as it runs. A tiny model may still finish one in a second or two: a job that ends before its
    // cancel lands is retried (at most three times).
    const maxSteps = await page.evaluate(() => Number(document.getElementById('steps').max) || 1000);
    await setValue('#steps', Math.min(1000, maxSteps));
    await setValue('#batch', 16);
    const quick = [];
    for (let attempt = 1; attempt <= 3; attempt++) {
      const before = await galleryCount();
      let st = await clickAndWait('#generate', ['running', 'done'], T);
      let stepAtCancel = null, t0 = Date.now();
      if (st === 'running') {
        stepAtCancel = await page.evaluate(() => document.getElementById('progress').value);
        t0 = Date.now();
        await page.click('#cancel');
        st = await waitForState(['cancelled', 'done'], 15000);
      }
      if (st === 'done') {
        quick.push(attempt);
        await page.waitForFunction((n) => document.querySelectorAll('#gallery .gallery-item').length >= n, before + 16, {timeout: 10000});
        continue;
      }
      const took = (Date.now() - t0) / 1000;
      const status = (await statusText()).trim();
      assert(/cancelled/i.test(status), `the status says "${status}"`);
      assert(took < 10, `cancelling took ${took.toFixed(1)} s`);
      await page.waitForTimeout(1000);
      const after = await galleryCount();
      assert(after === before, `the gallery went from ${before} to ${after} items after a cancel`);
      await shot('cancelled');
      return `cancelled at step ${stepAtCancel} of ${Math.min(1000, maxSteps)} in ${took.toFixed(2)} s` +
        `${quick.length ? ` (attempt ${attempt}: ${quick.length} finished before the cancel)` : ''}; status "${status}"`;
    }
    throw new Error('three jobs finished before their cancel landed: the model is too fast to cancel');
  });

  if (ok) ok = await step('(d) inpaint a gallery image', async () => {
    const before = await galleryCount();
    await page.locator('#gallery .gallery-item').first().locator('button[data-act="inpaint"]').click();
    await page.waitForFunction(() => document.getElementById('canvas').dataset.loaded === '1' && !document.getElementById('inpaint').disabled, null, {timeout: 15000});
    const box = await page.locator('#canvas').boundingBox();
    assert(box && box.width > 100, 'the canvas is not visible');
    // A stroke across the middle of the image.
    await page.mouse.move(box.x + box.width * 0.25, box.y + box.height * 0.45);
    await page.mouse.down();
    for (let i = 1; i <= 12; i++) await page.mouse.move(box.x + box.width * (0.25 + 0.5 * i / 12), box.y + box.height * (0.45 + 0.1 * i / 12));
    await page.mouse.up();
    const mask = await page.evaluate(() => {
      const c = document.getElementById('mask');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let white = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i] > 127) white++;
      return {white, total: c.width * c.height};
    });
    assert(mask.white > 0, 'the mask has no white pixels after the stroke');
    assert(mask.white < mask.total, 'the stroke whitened the whole mask');
    await page.selectOption('#method', 'repaint');
    await setValue('#rsteps', 20);
    await setValue('#batch', 1);
    await setValue('#seed', 7);
    await page.mouse.move(box.x + box.width + 40, box.y);  // the brush cursor off the canvas
    await shot('mask');
    await clickAndWait('#inpaint', ['queued', 'running', 'done'], 30000);
    await waitForState(['done'], T);
    await page.waitForFunction((n) => document.querySelectorAll('#gallery .gallery-item').length >= n, before + 1, {timeout: 10000});
    const first = await page.locator('#gallery .gallery-item').first().evaluate((e) => ({mode: e.dataset.mode, text: e.innerText, seed: e.dataset.seed}));
    assert(first.mode === 'inpaint', `the newest gallery item is ${first.mode}, not inpaint`);
    assert(first.seed === '7', `the inpainting's seed is ${first.seed}, want 7`);
    await shot('inpaint');
    return `mask ${mask.white} / ${mask.total} px; gallery ${before} → ${await galleryCount()}`;
  });

  if (ok) ok = await step('(e) final gallery', async () => {
    const n = await galleryCount();
    assert(n >= batch + 1, `the gallery has ${n} items`);
    await page.locator('#gallery').evaluate((g) => { g.scrollTop = 0; });
    await shot('gallery');
    return `${n} items`;
  });

  await step('no script errors in the page', async () => {
    assert(pageErrors.length === 0, pageErrors.join(' | '));
  });
}

let exitCode = 0;
try {
  await main();
} catch (e) {
  results.push({name: 'setup', ok: false, note: e.message});
  console.log(`  FAIL  setup: ${e.message}`);
}
try { if (browser) await browser.close(); } catch (e) { /* gone */ }
await stopServer();
const failed = results.filter((r) => !r.ok);
const expected = 6;  // a … e and the page-errors check: nothing skipped
if (failed.length || results.length < expected) exitCode = 1;
console.log(`serve_ui: ${exitCode ? 'FAIL' : 'PASS'} (${results.filter((r) => r.ok).length} passed, ${failed.length} failed` +
  `${results.length < expected ? `, ${expected - results.length} skipped` : ''}); screenshots in ${opt.out}`);
process.exit(exitCode);
