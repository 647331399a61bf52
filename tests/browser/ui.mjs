// Drives the official OpenClaw Control UI (served by clawgate) in Debian's headless Chromium.
// Run by tests/tests/control_ui_browser.rs; prints one JSON line with what it saw.
//
// env: GATEWAY_HTTP (http://127.0.0.1:PORT), GATEWAY_TOKEN, SCENARIO (chat | pairing | screen | config | walk | automations | secrets),
//      SCREENSHOTS (dir), CHROMIUM (default /usr/bin/chromium), PROFILE (fresh dir),
//      MESSAGE and EXPECT_REPLY (chat), APPROVE_CMD (pairing: JSON array argv, `{id}` replaced),
//      EXPECT_TEXT and EXPECT_STATE (screen; an empty GATEWAY_TOKEN opens the page without `#token=`),
//      FORM_MODEL_NAME, RAW_FIND and RAW_REPLACE (config), EXPECT_USAGE_TOKENS (chat: the Usage view's token figure),
//      EXPECT_JOB, NEW_JOB, JOB_MESSAGE, EVERY_SECONDS and EXPECT_SUMMARY (automations),
//      EXPECT_ENTRY, NEW_SECRET and SECRET_VALUE (secrets).
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

const env = process.env;
const base = env.GATEWAY_HTTP;
const token = env.GATEWAY_TOKEN;
const shots = env.SCREENSHOTS;
const T = 60_000;
mkdirSync(shots, { recursive: true });

const result = { scenario: env.SCENARIO, pages: [], steps: [], consoleErrors: [], cspViolations: [], errors: [] };
const step = (s) => { result.steps.push(s); process.stderr.write(`[ui] ${s}\n`); };

/** Record every WebSocket of a page: the connect frames it sent, the answers, closes, seq gaps. */
function record(page, name) {
  const info = { name, sockets: 0, connects: [], helloOk: 0, connectErrors: [], closes: [], seqGaps: 0, loads: 0, unknownMethods: [], calls: {} };
  const pending = new Map();
  // Kept off the JSON result: what `settled` reads to know a view's calls are all answered.
  Object.defineProperty(info, 'pending', { value: pending, enumerable: false });
  Object.defineProperty(info, 'lastFrameAt', { value: 0, enumerable: false, writable: true });
  // The page's newest socket: a navigated-away page's socket may never report its close.
  Object.defineProperty(info, 'latestSock', { value: 0, enumerable: false, writable: true });
  result.pages.push(info);
  page.on('load', () => { info.loads += 1; });
  page.on('console', (m) => {
    const t = m.text();
    if (/Content Security Policy|Refused to (execute|load|connect)/i.test(t)) result.cspViolations.push(t.slice(0, 300));
    else if (m.type() === 'error') result.consoleErrors.push(`${name}: ${t.slice(0, 300)}`);
  });
  page.on('pageerror', (e) => result.errors.push(`${name}: ${String(e).slice(0, 300)}`));
  page.on('websocket', (ws) => {
    info.sockets += 1;
    const sock = info.sockets;
    info.latestSock = sock;
    let lastSeq = 0;
    ws.on('framesent', (f) => {
      info.lastFrameAt = Date.now();
      try {
        const v = JSON.parse(f.payload);
        if (v.type === 'req' && v.method) {
          pending.set(`${sock}:${v.id}`, v.method);
          (info.calls[v.method] ||= { sent: 0, ok: 0, failed: [] }).sent += 1;
        }
        if (v.method === 'connect') {
          info.connects.push({ authKeys: Object.keys(v.params.auth || {}).sort(), client: v.params.client?.id, mode: v.params.client?.mode, device: !!v.params.device });
        }
      } catch {}
    });
    ws.on('framereceived', (f) => {
      info.lastFrameAt = Date.now();
      try {
        const v = JSON.parse(f.payload);
        if (v.type === 'res' && v.payload?.type === 'hello-ok') {
          info.helloOk += 1;
          lastSeq = 0;
          // Navigation to the first hello-ok: page, module graph and handshake (bench/ui-load.sh).
          if (result.helloMs === undefined && result.navStart) result.helloMs = Date.now() - result.navStart;
        }
        if (v.type === 'res' && pending.has(`${sock}:${v.id}`) && v.payload?.status !== 'accepted') {
          const c = info.calls[pending.get(`${sock}:${v.id}`)];
          pending.delete(`${sock}:${v.id}`);
          if (v.ok) c.ok += 1; else c.failed.push(v.error?.message);
        }
        if (v.type === 'res' && v.ok === false) {
          const d = v.error?.details?.code || v.error?.code;
          if (/unknown method/.test(v.error?.message || '')) info.unknownMethods.push(v.error.message);
          else if (v.error?.code === 'NOT_PAIRED' || /AUTH_|PAIRING|ORIGIN/.test(d || '')) info.connectErrors.push(d);
        }
        if (v.type === 'event' && typeof v.seq === 'number') {
          if (lastSeq && v.seq !== lastSeq + 1) info.seqGaps += 1;
          lastSeq = v.seq;
        }
      } catch {}
    });
    ws.on('close', () => {
      info.closes.push(Date.now());
      // A navigation drops the old socket's unanswered calls; they will never be answered.
      for (const k of [...pending.keys()]) if (k.startsWith(`${sock}:`)) pending.delete(k);
    });
  });
  return info;
}

async function shot(page, name) {
  const file = path.join(shots, `${name}.png`);
  await page.screenshot({ path: file, fullPage: false });
  step(`screenshot ${file}`);
}

async function bodyText(page) {
  return page.evaluate(() => document.body?.innerText || '');
}

/** The dashboard is up: the chat composer exists and the status says Connected. */
async function waitConnected(page, timeout = T) {
  await page.getByRole('textbox', { name: 'Chat composer' }).waitFor({ state: 'visible', timeout });
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    if ((await bodyText(page)).includes('Connected')) return;
    await page.waitForTimeout(250);
  }
  throw new Error('composer visible but the page never says Connected');
}

/** A freshly loaded view has settled: a new hello-ok since `helloBefore`, every request it sent
 *  answered, and no frame for `quietMs` (its banners render from those answers); at most `timeout`.
 *  (A fixed wait per view made the 34-view walk take two minutes.) */
async function settled(page, info, helloBefore, quietMs = 400, timeout = 4_000) {
  const deadline = Date.now() + timeout;
  await page.waitForTimeout(300);
  const waiting = () => [...info.pending.keys()].some((k) => k.startsWith(`${info.latestSock}:`));
  while (Date.now() < deadline) {
    if (info.helloOk > helloBefore && !waiting() && Date.now() - info.lastFrameAt >= quietMs) return true;
    await page.waitForTimeout(100);
  }
  return false;
}

/** Wait until `method` has been answered ok `n` times on the page's sockets. */
async function answered(page, info, method, n, timeout = T) {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    const c = info.calls[method];
    if (c && c.ok >= n) return true;
    if (c && c.failed.length) throw new Error(`${method} failed: ${c.failed.join('; ')}`);
    await page.waitForTimeout(200);
  }
  return false;
}

/** The Settings → Advanced page: a form field edit auto-saves (`config.set`), then the raw
 *  editor (revealed) saves a hand edit. env: FORM_MODEL_NAME, RAW_FIND, RAW_REPLACE. */
async function configScenario(page, info) {
  await waitConnected(page);
  await page.goto(`${base}/settings/advanced`, { waitUntil: 'domcontentloaded', timeout: T });
  const name = page.getByLabel('Name', { exact: true }).first();
  await name.waitFor({ state: 'visible', timeout: T });
  step('the form renders from config.schema');
  result.formText = (await bodyText(page)).slice(0, 3000);
  await name.fill(env.FORM_MODEL_NAME);
  await name.blur();
  result.formSaved = await answered(page, info, 'config.set', 1);
  step(`form saved: ${result.formSaved}`);
  await shot(page, 'config-1-form-saved');
  await page.locator('button[title="Edit raw JSON/JSON5 config"]').click();
  await page.getByRole('button', { name: 'Toggle raw config redaction' }).click();
  const raw = page.locator('textarea').first();
  await raw.waitFor({ state: 'visible', timeout: T });
  const text = await raw.inputValue();
  result.rawHadPlaceholder = text.includes('__OPENCLAW_REDACTED__');
  result.rawShowsFormEdit = text.includes(env.FORM_MODEL_NAME);
  if (!text.includes(env.RAW_FIND)) throw new Error(`raw editor has no ${env.RAW_FIND}:\n${text}`);
  await raw.fill(text.replace(env.RAW_FIND, env.RAW_REPLACE));
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  result.rawSaved = await answered(page, info, 'config.set', 2);
  step(`raw editor saved: ${result.rawSaved}`);
  await page.waitForTimeout(1000);
  await shot(page, 'config-2-raw-saved');
  result.configText = (await bodyText(page)).slice(0, 3000);
  result.connected = true;
}

/** Every view of the app's sidebar and of Settings: open it, let it load, screenshot it, and
 *  note the unknown-method answers and error banners it got (`result.views`). */
async function walkScenario(page, info) {
  await waitConnected(page);
  // A view's links, once its navigation has rendered: the count must hold still for a second
  // (a fixed wait read a half-built settings sidebar on a loaded machine).
  const links = async (from) => {
    await page.goto(`${base}${from}`, { waitUntil: 'domcontentloaded', timeout: T });
    const read = () => page.evaluate(() => [...document.querySelectorAll('a[href^="/"]')].map((a) => a.getAttribute('href')));
    let last = [];
    let stable = 0;
    for (const deadline = Date.now() + 30_000; Date.now() < deadline && stable < 2;) {
      await page.waitForTimeout(500);
      const now = await read();
      stable = now.length > 0 && now.length === last.length ? stable + 1 : 0;
      last = now;
    }
    return last;
  };
  const hrefs = new Set([...(await links('/chat/main')), ...(await links('/settings/appearance'))]);
  const views = [...hrefs].filter((h) => !/^\/(chat|custodian)\b/.test(h) || h === '/chat/main').sort();
  result.views = [];
  for (const href of views) {
    const before = info.unknownMethods.length;
    const helloBefore = info.helloOk;
    await page.goto(`${base}${href}`, { waitUntil: 'domcontentloaded', timeout: T });
    if (!(await settled(page, info, helloBefore))) step(`${href}: not settled after 4 s (hello ${info.helloOk - helloBefore}, pending ${[...info.pending.values()].join(',')})`);
    const text = await bodyText(page);
    const name = href.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '') || 'root';
    await shot(page, `walk-${name}`);
    // Error banners the UI draws from a malformed answer (not the honest "scheduler disabled").
    const malformed = (text.match(/(returned an invalid [^\n]*|Cannot read properties of [^\n]*|is not a function[^\n]*)/) || [null])[0];
    result.views.push({ href, unknownMethods: info.unknownMethods.slice(before), unknownBanner: /unknown method/i.test(text), malformed });
  }
  result.connected = true;
}

/** Wait until the page's text passes `want` (a string it must contain, or a predicate); the
 *  text, or null after `timeout`. */
async function textShown(page, want, timeout = T) {
  const test = typeof want === 'string' ? (t) => t.includes(want) : want;
  const deadline = Date.now() + timeout;
  for (;;) {
    const t = await bodyText(page);
    if (test(t)) return t;
    if (Date.now() > deadline) return null;
    await page.waitForTimeout(250);
  }
}

/** The Automations view (cron jobs): the job made over RPC beforehand is listed, a new one is
 *  created from the UI's own form (an agent turn in an isolated session every EVERY_SECONDS s),
 *  and its runs show — in the list's last-run column, the Run history tab and the job's own page.
 *  env: EXPECT_JOB, NEW_JOB, JOB_MESSAGE, EVERY_SECONDS, EXPECT_SUMMARY. */
async function automationsScenario(page, info) {
  await waitConnected(page);
  const main = () => page.evaluate(() => (document.querySelector('main') || document.body).innerText);
  await page.goto(`${base}/automations`, { waitUntil: 'domcontentloaded', timeout: T });
  await page.getByRole('button', { name: 'New automation' }).waitFor({ state: 'visible', timeout: T });
  result.jobListed = (await textShown(page, env.EXPECT_JOB)) !== null;
  step(`job ${env.EXPECT_JOB} listed: ${result.jobListed}`);
  result.listText = (await main()).slice(0, 3000);
  await shot(page, 'automations-1-list');

  // The form: prompt, name, "Interval" every N seconds; the rest as the UI defaults them
  // (agent main, isolated session, delivery none).
  await page.getByRole('button', { name: 'New automation' }).click();
  const prompt = page.locator('#cron-payload-text');
  await prompt.waitFor({ state: 'visible', timeout: T });
  await prompt.fill(env.JOB_MESSAGE);
  await page.locator('#cron-name').fill(env.NEW_JOB);
  await page.getByRole('radio', { name: 'Interval' }).click({ timeout: 10_000 });
  await page.locator('#cron-every-amount').fill(env.EVERY_SECONDS);
  await page.getByRole('button', { name: /^Unit:/ }).click();
  await page.getByRole('option', { name: 'Seconds' }).click();
  const summary = `Runs every ${env.EVERY_SECONDS} seconds`;
  result.formSummaryShown = (await textShown(page, summary, 10_000)) !== null;
  result.formText = (await main()).slice(0, 3000);
  step(`form filled (${summary}: ${result.formSummaryShown})`);
  await page.locator('#cron-every-amount').scrollIntoViewIfNeeded();
  await shot(page, 'automations-2-form');
  await page.getByRole('button', { name: 'Create automation', exact: true }).click();
  result.created = await answered(page, info, 'cron.add', 1);
  step(`created with cron.add: ${result.created}`);
  // Back on the list: the new job, its schedule, then a last run.
  result.newJobListed = (await textShown(page, env.NEW_JOB)) !== null;
  await shot(page, 'automations-3-created');
  // The list row's last-run cell: titled with the run's status (`OK`), a check glyph, its time.
  const lastRun = () => page.evaluate((name) => {
    const row = [...document.querySelectorAll('.cron-table__row')].find((r) => r.querySelector('.cron-table__name')?.innerText.includes(name));
    const last = row?.querySelector('.cron-table__last-run');
    return row ? { row: row.innerText, status: last?.getAttribute('title') || null, okGlyph: !!last?.querySelector('.cron-last-glyph--ok') } : null;
  }, env.NEW_JOB);
  for (const deadline = Date.now() + T; Date.now() < deadline;) {
    result.newJobRow = await lastRun();
    if (result.newJobRow?.status) break;
    await page.waitForTimeout(250);
  }
  result.lastRunShown = result.newJobRow?.status === 'OK' && result.newJobRow.okGlyph;
  result.listAfterText = (await main()).slice(0, 3000);
  step(`the list shows the new job's last run: ${result.lastRunShown}`);
  await shot(page, 'automations-4-list-last-run');

  // Run history (all jobs): a finished run of the new job, with the reply's summary.
  await page.getByRole('tab', { name: 'Run history' }).click();
  const ran = await textShown(page, (t) => t.includes(`${env.NEW_JOB} · OK`) && t.includes(env.EXPECT_SUMMARY));
  result.runsShown = ran !== null;
  result.runsText = (await main()).slice(0, 3000);
  step(`run history shows an OK run: ${result.runsShown}`);
  await shot(page, 'automations-5-run-history');

  // The job's own page: its settings as saved, and its own run history.
  await page.getByRole('tab', { name: 'All', exact: true }).click();
  await page.getByText(env.NEW_JOB, { exact: true }).first().click();
  await page.getByRole('button', { name: 'Run now', exact: true }).waitFor({ state: 'visible', timeout: T });
  result.jobPageShowsSchedule = (await textShown(page, `Every ${env.EVERY_SECONDS}s`)) !== null;
  result.jobPromptValue = await page.locator('#cron-payload-text').inputValue().catch(() => null);
  await shot(page, 'automations-6-job-settings');
  await page.getByRole('tab', { name: 'Run history' }).click();
  result.jobRunsShown = (await textShown(page, env.EXPECT_SUMMARY)) !== null;
  result.jobRunsText = (await main()).slice(0, 3000);
  step(`the job's page shows its runs: ${result.jobRunsShown}`);
  await shot(page, 'automations-7-job-run-history');
  result.connected = true;
}

/** Settings › Secrets (the team secret store): the entry set beforehand is listed, a new one is
 *  added from the page's own dialog (a credential-like name becomes a protected secret) and
 *  shows, masked. env: EXPECT_ENTRY, NEW_SECRET, SECRET_VALUE. */
async function secretsScenario(page, info) {
  await waitConnected(page);
  await page.goto(`${base}/settings/secrets`, { waitUntil: 'domcontentloaded', timeout: T });
  result.entryListed = (await textShown(page, env.EXPECT_ENTRY)) !== null;
  step(`entry ${env.EXPECT_ENTRY} listed: ${result.entryListed}`);
  await shot(page, 'secrets-1-listed');
  await page.getByRole('button', { name: 'Add', exact: true }).click();
  // The dialog opens with its Name field focused; its labels are not tied to the fields.
  const value = page.locator('textarea:visible').first();
  await value.waitFor({ state: 'visible', timeout: T });
  await page.keyboard.type(env.NEW_SECRET);
  await value.fill(env.SECRET_VALUE);
  await shot(page, 'secrets-2-dialog');
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  result.setAnswered = await answered(page, info, 'secrets.store.set', 1);
  result.savedNotice = (await textShown(page, `Saved ${env.NEW_SECRET} as Protected secret`)) !== null;
  step(`saved from the dialog: ${result.savedNotice}`);
  await shot(page, 'secrets-3-saved');
  const text = await bodyText(page);
  result.pageText = text.slice(0, 3000);
  result.valueShown = text.includes(env.SECRET_VALUE);
  result.connected = true;
}

const profile = env.PROFILE;
const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1280, height: 800 },
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
         // HOST_RESOLVER_RULES: e.g. `MAP gateway.example.test 127.0.0.1`, a public-looking name for
         // a loopback address (no DNS, no network), as a browser on another machine would use.
         ...(env.HOST_RESOLVER_RULES ? [`--host-resolver-rules=${env.HOST_RESOLVER_RULES}`] : [])],
});
try {
  const page = ctx.pages()[0] || (await ctx.newPage());
  const first = record(page, 'first');
  if (env.SCENARIO === 'screen') {
    // A screen the UI must show for a refusal (login gate, origin not allowed, …): EXPECT_TEXT.
    const url = token ? `${base}/#token=${encodeURIComponent(token)}` : `${base}/`;
    result.navStart = Date.now();
    await page.goto(url, { waitUntil: 'domcontentloaded', timeout: T });
    await page.getByText(env.EXPECT_TEXT).first().waitFor({ state: env.EXPECT_STATE || 'visible', timeout: T });
    await shot(page, 'screen');
    result.screenText = (await bodyText(page)).slice(0, 3000);
    result.shown = true;
  } else {
  await page.goto(`${base}/#token=${encodeURIComponent(token)}`, { waitUntil: 'domcontentloaded', timeout: T });
  if (env.SCENARIO === 'pairing') {
    await page.getByText('Approve this browser').first().waitFor({ timeout: T });
    await shot(page, 'pairing-1-approve-this-browser');
    const text = await bodyText(page);
    const m = text.match(/devices approve ([0-9a-f-]{36})/);
    if (!m) throw new Error(`no request id on the approve screen:\n${text.slice(0, 2000)}`);
    result.requestId = m[1];
    result.approveScreenText = text.slice(0, 2000);
    step(`approve screen shows request ${m[1]}`);
    const argv = JSON.parse(env.APPROVE_CMD).map((a) => a.replace('{id}', m[1]));
    result.approveOutput = execFileSync(argv[0], argv.slice(1), { encoding: 'utf8', timeout: 30_000 });
    step('approved with the CLI; waiting for the page to connect by itself');
    await waitConnected(page, 45_000);
    await shot(page, 'pairing-2-connected-after-approval');
    result.connected = true;
  } else if (env.SCENARIO === 'config') {
    await configScenario(page, first);
  } else if (env.SCENARIO === 'walk') {
    await walkScenario(page, first);
  } else if (env.SCENARIO === 'automations') {
    await automationsScenario(page, first);
  } else if (env.SCENARIO === 'secrets') {
    await secretsScenario(page, first);
  } else {
    await waitConnected(page);
    step('first page connected');
    await shot(page, 'chat-1-connected');
    result.firstPageText = (await bodyText(page)).slice(0, 3000);
    const composer = page.getByRole('textbox', { name: 'Chat composer' });
    await composer.fill(env.MESSAGE);
    await composer.press('Enter');
    step('message sent');
    await page.getByText(env.EXPECT_REPLY).first().waitFor({ timeout: T });
    step('reply shown');
    await page.getByText(/Done in/).first().waitFor({ timeout: T });
    step('run done');
    await shot(page, 'chat-2-reply');
    const after = await bodyText(page);
    result.replyShown = after.includes(env.EXPECT_REPLY);
    result.stillWorking = /Assistant is working/.test(after);
    result.recapText = (after.match(/Done in[^\n]*(\n[^\n]*){0,3}/) || [''])[0];
    result.outputTokensShown = /\d+ output tokens?/.test(result.recapText);
    // A second tab of the same browser profile: no secret in the URL, only the stored device token.
    const page2 = await ctx.newPage();
    record(page2, 'second');
    await page2.goto(`${base}/chat/main`, { waitUntil: 'domcontentloaded', timeout: T });
    await waitConnected(page2);
    step('second page connected with the stored device token');
    await page2.getByText(env.EXPECT_REPLY).first().waitFor({ timeout: T });
    result.secondPageShowsHistory = true;
    await shot(page2, 'chat-3-second-tab');
    result.connected = true;
    // The Logs view reads the gateway's own log (`logs.tail`), live: a socket opened while it
    // is shown adds a line it must show.
    await page2.goto(`${base}/logs`, { waitUntil: 'domcontentloaded', timeout: T });
    await page2.getByText(/gateway ready/).first().waitFor({ timeout: T });
    step('logs view shows the gateway log');
    const count = async () => ((await bodyText(page2)).match(/connected role=/g) || []).length;
    const before = await count();
    const page3 = await ctx.newPage();
    record(page3, 'third');
    await page3.goto(`${base}/chat/main`, { waitUntil: 'domcontentloaded', timeout: T });
    await waitConnected(page3);
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && (await count()) <= before) await page2.waitForTimeout(500);
    result.logsLive = (await count()) > before;
    await shot(page2, 'chat-4-logs');
    result.logsText = (await bodyText(page2)).slice(0, 3000);
    // The Usage view sums the turn's tokens from the gateway's store (`usage.cost`,
    // `sessions.usage`).
    await page2.goto(`${base}/usage`, { waitUntil: 'domcontentloaded', timeout: T });
    const usageDeadline = Date.now() + 30_000;
    const wanted = env.EXPECT_USAGE_TOKENS || '';
    while (Date.now() < usageDeadline && !(await bodyText(page2)).includes(wanted)) await page2.waitForTimeout(500);
    await page2.waitForTimeout(1000);
    await shot(page2, 'chat-5-usage');
    result.usageText = (await bodyText(page2)).slice(0, 4000);
    result.usageShown = wanted !== '' && result.usageText.includes(wanted);
    // The Debug view: status, health and system.info as the gateway reports them.
    await page2.goto(`${base}/debug`, { waitUntil: 'domcontentloaded', timeout: T });
    await page2.waitForTimeout(3000);
    await shot(page2, 'chat-6-debug');
    result.debugText = (await bodyText(page2)).slice(0, 6000);
  }
  }
  void first;
} catch (e) {
  result.errors.push(String(e && e.stack || e).slice(0, 2000));
  for (const [i, p] of ctx.pages().entries()) {
    try { await shot(p, `failure-page-${i}`); result.failureText = (await bodyText(p)).slice(0, 3000); } catch {}
  }
} finally {
  await ctx.close();
}
process.stdout.write(JSON.stringify(result) + '\n');
