// Capture device.token.rotate / device.token.revoke / device.pair.rename frames from the reference gateway.
import { createRequire } from 'node:module';
import crypto from 'node:crypto';
import fs from 'node:fs';
const require = createRequire('/root/.cache/clawgate/openclaw-ref/node_modules/');
const WebSocket = require('ws');

const URL_ = process.env.GW_URL || 'ws://127.0.0.1:28950/';
const OUT = process.env.OUT_DIR;
const TOKEN = 'testtoken123';
const FULL = ['operator.admin', 'operator.read', 'operator.write', 'operator.pairing'];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const b64u = (b) => Buffer.from(b).toString('base64url');
const summary = [];
const log = (...a) => { const s = a.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join(' '); summary.push(s); console.log(s); };

function newDevice() {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
  const raw = publicKey.export({ type: 'spki', format: 'der' }).subarray(12);
  return { privateKey, publicKey: b64u(raw), id: crypto.createHash('sha256').update(raw).digest('hex') };
}

class Conn {
  constructor(scenario, notes = []) {
    this.scenario = scenario; this.notes = notes; this.n = 0; this.lines = []; this.pending = new Map();
    this.events = []; this.closed = null; this.closeWaiters = []; this.byClient = false;
    this.captured_at = new Date().toISOString();
  }
  rec(o) { this.lines.push(o); }
  t() { return Date.now() - this.t0; }
  open() {
    return new Promise((resolve, reject) => {
      this.t0 = Date.now();
      this.ws = new WebSocket(URL_);
      this.ws.on('message', (d) => {
        const f = JSON.parse(d.toString());
        this.rec({ dir: 's2c', t_ms: this.t(), frame: f });
        if (f.type === 'event') {
          this.events.push(f);
          if (f.event === 'connect.challenge' && this.onChallenge) this.onChallenge(f);
        } else if (f.type === 'res' && this.pending.has(f.id)) {
          this.pending.get(f.id)(f); this.pending.delete(f.id);
        }
      });
      this.ws.on('close', (code, reason) => {
        this.closed = { code, reason: reason.toString() };
        this.rec({ close: code, reason: reason.toString(), by: this.byClient ? 'client' : 'server', t_ms: this.t() });
        for (const [, r] of this.pending) r(null);
        this.pending.clear();
        this.closeWaiters.forEach((w) => w());
      });
      this.ws.on('error', (e) => reject(e));
      this.ws.on('open', () => resolve());
    });
  }
  send(method, params) {
    const id = `${this.scenario}-${++this.n}`;
    const frame = { type: 'req', id, method, params };
    return new Promise((resolve) => {
      if (this.closed) return resolve(null);
      this.pending.set(id, resolve);
      this.rec({ dir: 'c2s', t_ms: this.t(), frame });
      this.ws.send(JSON.stringify(frame));
      setTimeout(() => { if (this.pending.has(id)) { this.pending.delete(id); resolve(null); } }, 15000);
    });
  }
  async connect({ device, auth, scopes = FULL, role = 'operator' }) {
    const ch = await new Promise((resolve) => {
      const existing = this.events.find((e) => e.event === 'connect.challenge');
      if (existing) return resolve(existing);
      this.onChallenge = resolve;
    });
    const { nonce, ts } = ch.payload;
    const params = {
      minProtocol: 4, maxProtocol: 4,
      client: { id: 'cli', version: '2026.9.6', platform: 'linux', deviceFamily: 'Linux', mode: 'cli' },
      caps: [], auth, role, scopes,
    };
    if (device) {
      const tok = auth.token ?? auth.deviceToken ?? auth.bootstrapToken ?? '';
      const payload = `v3|${device.id}|cli|cli|${role}|${scopes.join(',')}|${ts}|${tok}|${nonce}|linux|linux`;
      const signature = b64u(crypto.sign(null, Buffer.from(payload), device.privateKey));
      params.device = { id: device.id, publicKey: device.publicKey, signature, signedAt: ts, nonce };
      this.signedPayload = payload;
    }
    return this.send('connect', params);
  }
  async call(method, params, waitMs = 400) {
    const r = await this.send(method, params);
    await sleep(waitMs);
    return r;
  }
  waitClose(ms) {
    if (this.closed) return Promise.resolve(this.closed);
    return new Promise((resolve) => { this.closeWaiters.push(() => resolve(this.closed)); setTimeout(() => resolve(this.closed), ms); });
  }
  async close() {
    if (!this.closed) { this.byClient = true; this.ws.close(1000); await this.waitClose(3000); }
  }
  save(extraMeta = {}) {
    const meta = { source: 'reference gateway openclaw 2026.9.6', scenario: this.scenario, connection: '1/1',
      captured_at: this.captured_at, upgrade: { url: '/' }, ...extraMeta };
    if (this.notes.length) meta.notes = this.notes;
    if (this.signedPayload) meta.signedPayloadExample = this.signedPayload;
    const body = [JSON.stringify({ meta }), ...this.lines.map((l) => JSON.stringify(l))].join('\n') + '\n';
    fs.writeFileSync(`${OUT}/${this.scenario}.jsonl`, body);
  }
}
const brief = (r) => (r ? (r.ok ? { ok: true, payload: r.payload?.type === 'hello-ok' ? { auth: r.payload.auth } : r.payload } : { ok: false, error: r.error }) : null);
const evs = (c, from = 0) => c.events.slice(from).filter((e) => e.event !== 'connect.challenge' && e.event !== 'tick' && e.event !== 'health').map((e) => ({ event: e.event, payload: e.payload }));

async function main() {
  for (let i = 0; i < 30; i++) {
    const w = new Conn('warmup');
    try { await w.open(); const r = await w.connect({ auth: { token: TOKEN } }); await w.close(); if (r?.ok) break; log('warmup', brief(r)); } catch (e) { log('warmup err', String(e)); }
    await sleep(2000);
  }
  const devW = newDevice(), devM = newDevice(), devD = newDevice(), devE = newDevice(), devF = newDevice();
  log('devices', { W: devW.id, M: devM.id, D: devD.id, E: devE.id, F: devF.id });
  const ids = { [devW.id]: 'W(watcher)', [devM.id]: 'M(admin)', [devD.id]: 'D(device under test)', [devE.id]: 'E(errors caller)', [devF.id]: 'F(revoke-twice target)' };
  const meta = { devices: ids };
  const W = new Conn('watcher', ['operator.pairing watcher (device W, shared token) kept open during all scenarios to record broadcasts; never targeted']);
  await W.open(); log('W hello', brief(await W.connect({ device: devW, auth: { token: TOKEN } }))); await sleep(300);
  const M = new Conn('c-admin', ['admin operator (device M, shared token), never targeted: cross-device rotate/revoke of device D while D is connected']);
  await M.open(); log('M hello', brief(await M.connect({ device: devM, auth: { token: TOKEN } }))); await sleep(300);
  let mark, markX, markM;
  const step = async (c, label, method, params, wait = 800) => {
    mark = W.events.length; markX = c.events.length; markM = M.events.length;
    const r = await c.call(method, params, wait);
    log(`${c.scenario} ${label}`, brief(r));
    log('   events W', evs(W, mark), c === M ? '' : `${c.scenario}`, c === M ? '' : evs(c, markX), 'M', c === M ? '' : evs(M, markM), 'closed', c.closed);
    return r;
  };
  const conn = async (scenario, notes, device, auth, scopes = FULL) => {
    mark = W.events.length;
    const c = new Conn(scenario, notes); await c.open();
    const h = await c.connect({ device, auth, scopes }); log(`${scenario} hello`, brief(h));
    await sleep(400); log('   events W', evs(W, mark));
    if (!h?.ok) { await c.waitClose(2000); log('   closed', c.closed); }
    return [c, h];
  };

  // ---- A1: shared token + device D (silent pairing), list / rename / list / rotate self ----
  let [A1, h1] = await conn('a1-shared-token-rename-rotate', ['device D, shared token; silent local pairing; list, rename, list, rotate own operator token (socket is closed by the gateway right after the res)'], devD, { token: TOKEN });
  await step(A1, 'list', 'device.pair.list', {});
  await step(A1, 'rename', 'device.pair.rename', { deviceId: devD.id, label: 'my laptop' });
  await step(A1, 'list', 'device.pair.list', {});
  await step(A1, 'rotate', 'device.token.rotate', { deviceId: devD.id, role: 'operator' }, 1000);
  if (!A1.closed) await step(A1, 'list', 'device.pair.list', {});
  await A1.close(); A1.save(meta);

  // ---- A2: reconnect (shared token), rotate own token narrowing scopes ----
  let [A2, h2] = await conn('a2-shared-token-rotate-scopes', ['device D reconnects with shared token (hello-ok echoes the current, rotated token), then rotates own operator token with scopes [operator.read]'], devD, { token: TOKEN });
  await step(A2, 'rotate scopes', 'device.token.rotate', { deviceId: devD.id, role: 'operator', scopes: ['operator.read'] }, 1000);
  if (!A2.closed) await step(A2, 'list', 'device.pair.list', {});
  await A2.close(); A2.save(meta);
  await step(M, 'list after narrowing rotate', 'device.pair.list', {});

  // ---- A3: reconnect (shared token, full scopes) after narrowing; revoke own token ----
  let [A3, h3] = await conn('a3-shared-token-revoke', ['device D reconnects with shared token + full scopes after its token was narrowed to operator.read, lists, then revokes its own operator token'], devD, { token: TOKEN });
  if (h3?.ok) {
    await step(A3, 'list', 'device.pair.list', {});
    await step(A3, 'revoke', 'device.token.revoke', { deviceId: devD.id, role: 'operator' }, 1500);
    if (!A3.closed) await step(A3, 'list', 'device.pair.list', {});
  }
  await A3.close(); A3.save(meta);
  const revokedTok = h3?.payload?.auth?.deviceToken;

  // ---- A4: connect with the revoked token ----
  if (revokedTok) {
    let [A4] = await conn('a4-revoked-token-connect', ['device D connects with only its revoked device token'], devD, { deviceToken: revokedTok }, h3.payload.auth.scopes);
    await A4.close(); A4.save(meta);
  }
  // ---- A5: shared token again after revoke: token re-issued? ----
  let [A5, h5] = await conn('a5-shared-token-after-revoke', ['device D reconnects with shared token after its operator token was revoked: is a token re-issued in hello-ok?'], devD, { token: TOKEN });
  if (h5?.ok) await step(A5, 'list', 'device.pair.list', {});
  await A5.close(); A5.save(meta);
  let tokB = h5?.payload?.auth?.deviceToken;
  let scopesB = h5?.payload?.auth?.scopes || FULL;
  if (!tokB) { const r = await step(M, 'rotate D to get a token', 'device.token.rotate', { deviceId: devD.id, role: 'operator' }); tokB = r?.payload?.token; }

  // ---- B1: device token only; rotate own ----
  let [B1, hb1] = await conn('b1-device-token-rotate-self', ['device D connects with ONLY auth.deviceToken, rotates its own operator token (token delivered in-band), socket then closed'], devD, { deviceToken: tokB }, scopesB);
  let newTok;
  if (hb1?.ok) {
    const r = await step(B1, 'rotate self', 'device.token.rotate', { deviceId: devD.id, role: 'operator' }, 1000);
    newTok = r?.payload?.token;
    if (!B1.closed) await step(B1, 'list', 'device.pair.list', {});
  }
  await B1.close(); B1.save(meta);
  // ---- B2: old token after rotation ----
  if (newTok) {
    let [B2] = await conn('b2-old-token-after-rotate', ['device D connects with its pre-rotation token'], devD, { deviceToken: tokB }, scopesB);
    await B2.close(); B2.save(meta);
  }
  // ---- B3: new token; stays open while M revokes ----
  if (newTok) {
    let [B3, hb3] = await conn('b3-device-token-revoked-live', ['device D connects with the rotated token (auth.deviceToken only) and stays open; admin M (c-admin.jsonl) revokes its operator token'], devD, { deviceToken: newTok }, scopesB);
    if (hb3?.ok) {
      mark = W.events.length; markX = B3.events.length; markM = M.events.length;
      const r = await M.call('device.token.revoke', { deviceId: devD.id, role: 'operator' }, 200);
      log('M revoke D (B3 live)', brief(r));
      await B3.waitClose(3000);
      log('   B3 closed', B3.closed, 'B3 events', evs(B3, markX), 'W', evs(W, mark), 'M', evs(M, markM));
      if (!B3.closed) { await step(B3, 'list after revoke (still open?)', 'device.pair.list', {}); }
    }
    await B3.close(); B3.save(meta);
  }
  // ---- B4: shared-token connection of D open while M rotates D (cross-device rotate) ----
  {
    let [B4, hb4] = await conn('b4-shared-token-rotated-live', ['device D connected with shared token stays open; admin M (c-admin.jsonl) rotates its operator token'], devD, { token: TOKEN });
    if (hb4?.ok) {
      mark = W.events.length; markX = B4.events.length; markM = M.events.length;
      const r = await M.call('device.token.rotate', { deviceId: devD.id, role: 'operator' }, 200);
      log('M rotate D (B4 live)', brief(r));
      await B4.waitClose(3000);
      log('   B4 closed', B4.closed, 'B4 events', evs(B4, markX), 'W', evs(W, mark), 'M', evs(M, markM));
    }
    await B4.close(); B4.save(meta);
  }
  // ---- B5: shared-token connection of D open while M revokes D ----
  {
    let [B5, hb5] = await conn('b5-shared-token-revoked-live', ['device D connected with shared token stays open; admin M (c-admin.jsonl) revokes its operator token'], devD, { token: TOKEN });
    if (hb5?.ok) {
      mark = W.events.length; markX = B5.events.length; markM = M.events.length;
      const r = await M.call('device.token.revoke', { deviceId: devD.id, role: 'operator' }, 200);
      log('M revoke D (B5 live)', brief(r));
      await B5.waitClose(3000);
      log('   B5 closed', B5.closed, 'B5 events', evs(B5, markX), 'W', evs(W, mark), 'M', evs(M, markM));
      if (!B5.closed) await step(B5, 'list after revoke (still open?)', 'device.pair.list', {});
    }
    await B5.close(); B5.save(meta);
  }
  await step(M, 'list', 'device.pair.list', {});

  // ---- Errors (caller device E, never targeted except read-only) ----
  let [F] = await conn('f-setup', ['device F paired silently via shared token (target of revoke-twice)'], devF, { token: TOKEN }, ['operator.read']);
  await F.close(); F.save(meta);
  let [E] = await conn('e-errors', ['error and edge cases: role the device lacks, unknown deviceId for rename, label validation, revoke twice, rotate after revoke, rotate to scopes outside the approved set'], devE, { token: TOKEN });
  await step(E, 'rotate role node', 'device.token.rotate', { deviceId: devD.id, role: 'node' });
  await step(E, 'revoke role node', 'device.token.revoke', { deviceId: devD.id, role: 'node' });
  await step(E, 'rename unknown', 'device.pair.rename', { deviceId: '0'.repeat(64), label: 'ghost' });
  await step(E, 'rename empty', 'device.pair.rename', { deviceId: devD.id, label: '' });
  await step(E, 'rename blank', 'device.pair.rename', { deviceId: devD.id, label: '   ' });
  await step(E, 'rename padded', 'device.pair.rename', { deviceId: devD.id, label: '  padded  ' });
  await step(E, 'revoke F #1', 'device.token.revoke', { deviceId: devF.id, role: 'operator' });
  await step(E, 'revoke F #2', 'device.token.revoke', { deviceId: devF.id, role: 'operator' });
  await step(E, 'rotate F after revoke', 'device.token.rotate', { deviceId: devF.id, role: 'operator' });
  await step(E, 'rotate F scopes beyond approved', 'device.token.rotate', { deviceId: devF.id, role: 'operator', scopes: ['operator.admin'] });
  await step(E, 'rotate F scopes empty', 'device.token.rotate', { deviceId: devF.id, role: 'operator', scopes: [] });
  await step(E, 'rotate F bogus scope', 'device.token.rotate', { deviceId: devF.id, role: 'operator', scopes: ['bogus.scope'] });
  await step(E, 'list', 'device.pair.list', {});
  await E.close(); E.save(meta);

  // ---- device-less shared-token CLI caller rotating D ----
  let [N] = await conn('n-deviceless-rotate', ['device-less CLI operator (shared token) rotates device D token'], null, { token: TOKEN });
  await step(N, 'rotate D', 'device.token.rotate', { deviceId: devD.id, role: 'operator' });
  await N.close(); N.save(meta);

  await sleep(500);
  await M.close(); M.save(meta);
  await W.close(); W.save(meta);
  fs.writeFileSync(`${OUT}/../summary-devices-token.log`, summary.join('\n') + '\n');
}
main().catch((e) => { console.error(e); process.exit(1); });
