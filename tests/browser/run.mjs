// Browser tests of the sandbox: the demo page at / and each provider's hosted step, clicked through
// in headless Debian chromium (playwright-core, no downloaded browser), every page checked with
// axe-core (WCAG 2.0/2.1 A and AA: 0 violations), a screenshot of each step, and the API read
// independently with the key. Started by scripts/browser-test, which runs idv-local and passes:
//   node tests/browser/run.mjs BASE_URL [NAME_FILTER]
// with IDV_API_KEY, IDV_NODE_TOOLS (playwright-core, axe-core) and IDV_BROWSER_SHOTS in the env.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import assert from 'node:assert/strict';

const [base, filter = ''] = process.argv.slice(2);
const { IDV_API_KEY: key, IDV_NODE_TOOLS: tools, IDV_BROWSER_SHOTS: shots } = process.env;
if (!base || !key || !tools || !shots) {
  console.error('usage: IDV_API_KEY=... IDV_NODE_TOOLS=... IDV_BROWSER_SHOTS=... node run.mjs BASE_URL [FILTER]');
  process.exit(2);
}
const require = createRequire(path.join(tools, 'package.json'));
const { chromium } = require('playwright-core');
const axeSource = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const TIMEOUT = 30_000;   // for one session to reach a status (reconcile runs every second)

fs.mkdirSync(shots, { recursive: true });
for (const f of fs.readdirSync(shots)) if (f.endsWith('.png')) fs.rmSync(path.join(shots, f));

// --- helpers ---------------------------------------------------------------------------------

const axeResults = [];   // { page, violations }
let shotCount = 0;
const stepCount = {};

// axe on the page as it is now, and a screenshot of it: every step of every test comes here.
async function check(page, test, step) {
  // Numbered within the test, so a name stays the same whichever tests run.
  stepCount[test] = (stepCount[test] || 0) + 1;
  shotCount++;
  const name = `${test}-${String(stepCount[test]).padStart(2, '0')}-${step}`;
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
  // Through the DevTools protocol, so the demo page's CSP (no inline script) does not block it.
  if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) await page.evaluate(axeSource);
  const violations = await page.evaluate(async (tags) => {
    const r = await window.axe.run(document, { runOnly: { type: 'tag', values: tags } });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
  }, AXE_TAGS);
  axeResults.push({ page: name, url: page.url().replace(/jwt=[^&]+/, 'jwt=...'), violations: violations.length });
  assert.deepEqual(violations, [], `axe violations on ${name} (${page.url()})`);
}

async function apiGet(p) {
  const r = await fetch(base + p, { headers: { Authorization: `Bearer ${key}` } });
  assert.equal(r.status, 200, `GET ${p}: ${r.status}`);
  return r.json();
}

async function openDemo(context) {
  const page = await context.newPage();
  await page.goto(base + '/');
  return page;
}

// Fills the start form by its labels (so the labels are tested too) and starts a session.
async function startSession(page, test, provider, userId, fill) {
  await page.getByLabel('Provider', { exact: true }).selectOption(provider);
  await page.getByLabel('User id', { exact: false }).first().fill(userId);
  if (fill) await fill(page);
  await check(page, test, 'form');
  const before = await page.locator('#s-id').textContent();
  await page.getByRole('button', { name: 'Start verification' }).click();
  // A new session on screen (a second start replaces the first one's id).
  await page.waitForFunction((old) => {
    const shown = document.getElementById('s-id').textContent;
    return shown.startsWith('ses_') && shown !== old;
  }, before, { timeout: TIMEOUT });
  const id = await page.locator('#s-id').textContent();
  await check(page, test, 'started');
  return id;
}

// The demo page shows `status` (it polls the API every second), and so does the API.
async function expectStatus(page, test, id, status, expected = {}) {
  await page.waitForFunction((s) => document.getElementById('s-status').textContent === s, status, { timeout: TIMEOUT });
  // Announced in the live region (recorded as it changes: a later message may replace it).
  await page.waitForFunction((s) => window.announced.some((text) => text.includes(s)), status, { timeout: TIMEOUT });
  await check(page, test, status);
  const session = await apiGet(`/v1/sessions/${id}?refresh=false`);
  assert.equal(session.status, status, `API status of ${id}`);
  const shown = {
    provider_status: await page.locator('#s-provider-status').textContent(),
    last_error: await page.locator('#s-last-error').textContent(),
  };
  assert.equal(shown.provider_status, session.provider_status ?? 'none yet', 'page shows the provider status');
  assert.equal(shown.last_error, session.last_error ? `${session.last_error.code}: ${session.last_error.message}` : 'none', 'page shows last_error');
  if ('provider_status' in expected) assert.equal(session.provider_status, expected.provider_status);
  if ('last_error' in expected) assert.equal(session.last_error ? session.last_error.code : null, expected.last_error);
  return session;
}

// Opens the provider's hosted page the way the demo page does (a popup) and checks it.
async function openHosted(page, test, step) {
  const [popup] = await Promise.all([page.waitForEvent('popup'), page.locator('#open-step').click()]);
  await popup.waitForLoadState();
  await check(popup, test, step);
  return popup;
}

async function press(popup, test, name, step) {
  await Promise.all([popup.waitForNavigation(), popup.getByRole('button', { name, exact: true }).click()]);
  await check(popup, test, step);
}

// --- the tests -------------------------------------------------------------------------------

const tests = {
  async 'demo page: key injected, labelled, keyboard, 375 px wide'(context) {
    const page = await context.newPage();
    await page.setViewportSize({ width: 375, height: 800 });
    await page.goto(base + '/');
    await check(page, 'demo', 'phone-width');
    assert.equal(await page.getByLabel('API key').inputValue(), key, 'idv-local injected its API key');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(overflow <= 375, `no sideways scrolling at 375 px (scrollWidth ${overflow})`);
    // Keyboard: the first Tab reaches the skip link, which shows a focus outline and jumps to the form.
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => {
      const el = document.activeElement;
      return { text: el.textContent, outline: getComputedStyle(el).outlineStyle };
    });
    assert.equal(focused.text, 'Skip to the start form');
    assert.notEqual(focused.outline, 'none', 'focus is visible');
    // Start a Nevis session with the keyboard only: provider select, then Enter on the button.
    await page.getByLabel('User id', { exact: false }).first().fill('browser-keyboard');
    await page.getByLabel('Provider', { exact: true }).focus();
    await page.keyboard.press('ArrowDown');   // authento -> prove
    await page.keyboard.press('ArrowDown');   // -> nevis
    assert.equal(await page.getByLabel('Provider', { exact: true }).inputValue(), 'nevis');
    await page.getByRole('button', { name: 'Start verification' }).focus();
    await page.keyboard.press('Enter');
    await page.locator('#s-id').filter({ hasText: /^ses_/ }).waitFor({ timeout: TIMEOUT });
    assert.equal(await page.evaluate(() => document.activeElement.id), 'session-title', 'focus moves to the session');
    await check(page, 'demo', 'keyboard-started');
  },

  async 'demo page: a refused start shows the problem and starts nothing'(context) {
    const t = 'refused';
    const page = await openDemo(context);
    await page.getByLabel('API key').fill('idv_sk_not_a_key');
    await page.getByLabel('Provider', { exact: true }).selectOption('nevis');
    await page.getByLabel('User id', { exact: false }).first().fill('browser-refused');
    await page.getByRole('button', { name: 'Start verification' }).click();
    const alert = page.getByRole('alert');
    await alert.filter({ hasText: 'HTTP 401 unauthenticated' }).waitFor();
    assert.ok(await page.locator('#session').isHidden(), 'no session shown');
    await check(page, t, 'unauthenticated');
    // The right key, a user id the API refuses: the field error is shown.
    await page.getByLabel('API key').fill(key);
    await page.getByLabel('User id', { exact: false }).first().fill('not an id!');
    await page.getByRole('button', { name: 'Start verification' }).click();
    await alert.filter({ hasText: 'HTTP 400 invalid_request' }).waitFor();
    assert.match(await alert.textContent(), /user_id/);
    await check(page, t, 'invalid');
    const listed = await apiGet('/v1/users/browser-refused/sessions');
    assert.deepEqual(listed.data, [], 'nothing was started');
  },

  async 'authento: submit and approve on the hosted page -> verified'(context) {
    const t = 'authento-ok';
    const page = await openDemo(context);
    const id = await startSession(page, t, 'authento', 'browser-authento-ok', (p) => p.getByLabel('Verification type').selectOption('BASIC'));
    const popup = await openHosted(page, t, 'verify-page');
    await press(popup, t, 'Submit documents', 'submitted');
    assert.equal(await popup.locator('#status').textContent(), 'PROCESSING');
    await press(popup, t, 'Approve', 'approved');
    assert.equal(await popup.locator('#status').textContent(), 'VERIFIED');
    await expectStatus(page, t, id, 'verified', { provider_status: 'VERIFIED', last_error: null });
  },

  async 'authento: the review rejects -> failed, rejected'(context) {
    const t = 'authento-reject';
    const page = await openDemo(context);
    const id = await startSession(page, t, 'authento', 'browser-authento-no');
    const popup = await openHosted(page, t, 'verify-page');
    await press(popup, t, 'Reject', 'rejected');
    await expectStatus(page, t, id, 'failed', { provider_status: 'REJECTED', last_error: 'rejected' });
  },

  async 'prove: the code from the simulated phone -> verified'(context) {
    const t = 'prove-ok';
    const page = await openDemo(context);
    const id = await startSession(page, t, 'prove', 'browser-prove-ok', async (p) => {
      await p.getByLabel('Test user', { exact: false }).selectOption({ index: 0 });
      await p.getByLabel('Possession check').selectOption('mobile');
    });
    await expectStatus(page, t, id, 'pending');
    const code = await page.locator('#otp-code').textContent();
    await page.getByLabel('Code from the SMS').fill(code);
    await page.getByRole('button', { name: 'Verify code' }).click();
    await expectStatus(page, t, id, 'verified', { provider_status: 'true', last_error: null });
  },

  async 'prove: a wrong code -> failed, possession_failed'(context) {
    const t = 'prove-wrong-code';
    const page = await openDemo(context);
    const id = await startSession(page, t, 'prove', 'browser-prove-no', (p) => p.getByLabel('Possession check').selectOption('mobile'));
    const code = await page.locator('#otp-code').textContent();
    await page.getByLabel('Code from the SMS').fill(code === '0000' ? '1111' : '0000');
    await page.getByRole('button', { name: 'Verify code' }).click();
    await expectStatus(page, t, id, 'failed', { last_error: 'possession_failed' });
  },

  async 'prove: the Instant Link is never tapped -> expired, possession_timeout'(context) {
    const t = 'prove-timeout';
    const page = await openDemo(context);
    const id = await startSession(page, t, 'prove', 'browser-prove-late', (p) => p.getByLabel('Possession check').selectOption('desktop'));
    await page.getByRole('button', { name: 'Ignore the SMS (possession times out)' }).click();
    await expectStatus(page, t, id, 'expired', { last_error: 'expired' });
  },

  async 'nevis: consent and capture on the welcome page -> verified'(context) {
    const t = 'nevis-ok';
    const page = await openDemo(context);
    const id = await startSession(page, t, 'nevis', 'browser-nevis-ok');
    const popup = await openHosted(page, t, 'welcome-page');
    assert.equal(await popup.locator('#status').textContent(), 'in_progress', 'opening the page is consent');
    await press(popup, t, 'Complete the capture (verified)', 'captured');
    await expectStatus(page, t, id, 'verified', { provider_status: 'verified', last_error: null });
  },

  async 'nevis: the capture fails -> failed with its error code'(context) {
    const t = 'nevis-fail';
    const page = await openDemo(context);
    const id = await startSession(page, t, 'nevis', 'browser-nevis-no');
    const popup = await openHosted(page, t, 'welcome-page');
    await popup.getByLabel('Why the capture fails').selectOption('FACE_MISMATCH');
    await press(popup, t, 'Fail the capture', 'capture-failed');
    await expectStatus(page, t, id, 'failed', { last_error: 'selfie_mismatch' });
  },

  async 'passbase: the button stand-in, onFinish links, Passbase approves -> verified'(context) {
    const t = 'passbase-ok';
    const page = await openDemo(context);
    const id = await startSession(page, t, 'passbase', 'browser-passbase-ok', (p) => p.getByLabel('Document the user shows').selectOption('PASSPORT'));
    await page.getByRole('button', { name: 'Verify with Passbase (stand-in button)' }).click();
    await page.getByRole('button', { name: 'Passbase approves' }).waitFor();
    await check(page, t, 'linked');
    const linked = await apiGet(`/v1/sessions/${id}?refresh=false`);
    assert.notEqual(linked.status, 'verified', 'not verified before Passbase decides');
    await page.getByRole('button', { name: 'Passbase approves' }).click();
    const s = await expectStatus(page, t, id, 'verified', { last_error: null });
    assert.equal(s.document_type, 'PASSPORT');
  },

  async 'passbase: Passbase declines -> failed, declined'(context) {
    const t = 'passbase-decline';
    const page = await openDemo(context);
    const id = await startSession(page, t, 'passbase', 'browser-passbase-no');
    await page.getByRole('button', { name: 'Verify with Passbase (stand-in button)' }).click();
    await page.getByRole('button', { name: 'Passbase declines' }).click();
    await expectStatus(page, t, id, 'failed', { last_error: 'rejected' });
  },

  async 'stripe: every check passes on the hosted page -> verified'(context) {
    const t = 'stripe-ok';
    const page = await openDemo(context);
    const id = await startSession(page, t, 'stripe', 'browser-stripe-ok', (p) => p.getByLabel('Require a matching selfie').check());
    const popup = await openHosted(page, t, 'hosted-page');
    assert.match(await popup.locator('#requirements').textContent(), /matching selfie/);
    await press(popup, t, 'Submit: every check passes (verified)', 'submitted');
    await expectStatus(page, t, id, 'verified', { provider_status: 'verified', last_error: null });
    // The picture of docs/sandbox.md and the README (docs/sandbox-demo.png is a copy of it).
    await page.locator('#session').screenshot({ path: path.join(shots, 'readme-session.png') });
  },

  async 'stripe: a document check fails -> pending again with its code'(context) {
    const t = 'stripe-fail';
    const page = await openDemo(context);
    const id = await startSession(page, t, 'stripe', 'browser-stripe-no');
    const popup = await openHosted(page, t, 'hosted-page');
    await popup.getByLabel('Failure').selectOption('document_expired');
    await press(popup, t, 'Submit: fail with this code', 'submitted');
    await page.waitForFunction(() => document.getElementById('s-last-error').textContent.startsWith('document_expired'), null, { timeout: TIMEOUT });
    await expectStatus(page, t, id, 'pending', { provider_status: 'requires_input', last_error: 'document_expired' });
  },

  async "cancel, and the user's sessions listed"(context) {
    const t = 'cancel';
    const page = await openDemo(context);
    const first = await startSession(page, t, 'stripe', 'browser-cancel');
    const id = await startSession(page, t, 'nevis', 'browser-cancel');
    await page.getByRole('button', { name: 'Cancel this session' }).click();
    await expectStatus(page, t, id, 'canceled', { last_error: null });
    assert.ok(await page.getByRole('button', { name: 'Cancel this session' }).isDisabled());
    await page.getByRole('button', { name: 'List sessions' }).click();
    const rows = page.locator('#sessions tbody tr');
    await page.waitForFunction(() => document.querySelectorAll('#sessions tbody tr').length === 2);
    await check(page, t, 'listed');
    // The page lists what the API lists, in its order (newest first; two sessions started within
    // the same second may come either way).
    const listed = await apiGet('/v1/users/browser-cancel/sessions');
    assert.deepEqual(await rows.locator('td:first-child').allTextContents(), listed.data.map((s) => s.id));
    assert.deepEqual(await rows.locator('td:nth-child(3)').allTextContents(), listed.data.map((s) => s.status));
    assert.deepEqual(Object.fromEntries(listed.data.map((s) => [s.id, s.status])), { [id]: 'canceled', [first]: 'pending' });
  },
};

// --- the run ---------------------------------------------------------------------------------

const started = Date.now();
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  // This machine has no network: nothing in the background may try to reach one.
  args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let passed = 0;
let failed = 0;
try {
  for (const [name, test] of Object.entries(tests)) {
    if (filter && !name.includes(filter)) continue;
    const context = await browser.newContext({ viewport: { width: 1024, height: 800 } });
    context.setDefaultTimeout(TIMEOUT);
    // Every text the demo page's live region (role=status) announces, in order.
    await context.addInitScript(() => {
      window.announced = [];
      document.addEventListener('DOMContentLoaded', () => {
        const live = document.getElementById('live');
        if (!live) return;
        new MutationObserver(() => window.announced.push(live.textContent))
          .observe(live, { childList: true, characterData: true, subtree: true });
      });
    });
    const t0 = Date.now();
    try {
      await test(context);
      passed++;
      console.log(`ok   ${name} (${((Date.now() - t0) / 1000).toFixed(1)}s)`);
    } catch (error) {
      failed++;
      console.log(`FAIL ${name} (${((Date.now() - t0) / 1000).toFixed(1)}s)\n     ${String(error.stack || error).split('\n').slice(0, 8).join('\n     ')}`);
    } finally {
      await context.close();
    }
  }
} finally {
  await browser.close();
}
const pages = axeResults.length;
const bad = axeResults.filter((r) => r.violations > 0).length;
console.log(`axe (${AXE_TAGS.join(', ')}): ${pages} page states checked, ${bad} with violations`);
console.log(`screenshots: ${shots} (${shotCount})`);
console.log(`browser: ${passed} passed, ${failed} failed in ${((Date.now() - started) / 1000).toFixed(1)}s`);
process.exit(failed || !passed ? 1 : 0);
