// The demo app: what an app does with the gateway's public API, in plain browser JavaScript.
// Every call to /v1/... is one an app's backend would make (with its API key); the calls to
// /sandbox/... stand for what the user does in the provider's own app or SDK.
'use strict';

const $ = (id) => document.getElementById(id);
const TERMINAL = ['verified', 'failed', 'expired', 'canceled'];
const FINAL = ['expired', 'canceled'];

// --- the API -------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    const problem = body && typeof body === 'object' ? body : {};
    const fields = (problem.errors || []).map((e) => `${e.field}: ${e.message || e.code}`).join('; ');
    super(`HTTP ${status}${problem.code ? ' ' + problem.code : ''}: ${problem.detail || problem.title || problem.error || 'request failed'}${fields ? ' (' + fields + ')' : ''}`);
    this.status = status;
    this.body = body;
  }
}

async function call(method, path, body, headers) {
  const init = { method, headers: { ...(headers || {}) } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { json = text; }
  if (!response.ok) throw new ApiError(response.status, json);
  return json;
}

// The gateway, with the API key (an app's backend holds it; here idv-local injected it).
const api = (method, path, body) =>
  call(method, path, body, { Authorization: `Bearer ${$('api-key').value.trim()}` });
// The simulators' control routes: what the user does in the provider's SDK or app.
const sandbox = (path, body) => call('POST', `/sandbox/${path}`, body);

// --- state ---------------------------------------------------------------------------------

let current = null;   // { session, provider, extra } of the session on screen
let poller = null;
let seen = '';

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') node.className = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

function say(text) { $('live').textContent = text; }

function showError(where, error) {
  const box = $(where);
  box.textContent = error.message || String(error);
  box.hidden = false;
}

// --- starting ------------------------------------------------------------------------------

function startBody(provider) {
  const body = { provider, user_id: $('user-id').value.trim() };
  switch (provider) {
    case 'authento':
      body.verification_type = $('authento-vt').value;
      break;
    case 'prove': {
      const [phone, first, last] = $('prove-user').value.split('|');
      Object.assign(body, {
        phone_number: phone, first_name: first, last_name: last,
        possession_type: $('prove-possession').value,
      });
      // Where Prove's Instant Link leads after the tap (must be https and a host name).
      if (body.possession_type === 'desktop') body.final_target_url = 'https://app.example/verified';
      break;
    }
    case 'stripe':
      body.type = $('stripe-type').value;
      if (body.type === 'document' && $('stripe-selfie').checked) {
        body.document_options = { require_matching_selfie: true };
      }
      break;
    default:
      break;
  }
  return body;
}

async function start(event) {
  event.preventDefault();
  $('form-error').hidden = true;
  const provider = $('provider').value;
  const button = $('start-button');
  button.disabled = true;
  try {
    const session = await api('POST', '/v1/sessions', startBody(provider));
    current = {
      session, provider,
      possession: $('prove-possession').value,
      passbase: { document_type: $('passbase-doc').value, country: $('passbase-country').value.trim() },
    };
    seen = '';
    $('history').replaceChildren();
    $('list-user').value = session.user_id;
    $('session').hidden = false;
    renderStep();
    render(session);
    say(`Session ${session.id} started with ${provider}: ${session.status}.`);
    $('session-title').focus();
    watch();
    listSessions();
  } catch (error) {
    showError('form-error', error);
  } finally {
    button.disabled = false;
  }
}

// --- the user's step, per provider ---------------------------------------------------------

const NAMES = { authento: 'Authento', prove: 'Prove', nevis: 'Nevis', passbase: 'Passbase', stripe: 'Stripe' };

// A provider's hosted page, opened in a popup as their integrations do (a link, so a new tab works
// too, from the keyboard or with a middle click).
function hostedStep(url, label, note) {
  const link = el('a', { id: 'open-step', class: 'button', href: url, target: '_blank', rel: 'noopener' }, label);
  link.addEventListener('click', (event) => {
    event.preventDefault();
    window.open(url, 'idv-provider', 'noopener,popup,width=520,height=760');
    say(`${label}: opened in a new window. This page keeps watching the session.`);
  });
  return [el('p', {}, note), link];
}

function outcomeButton(id, label, note, action) {
  const button = el('button', { id, type: 'button', class: 'secondary' }, label);
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      await action();
    } catch (error) {
      say(`${label} failed: ${error.message}`);
    } finally {
      button.disabled = false;
    }
  });
  return el('div', { class: 'outcome' }, button, el('p', { class: 'help' }, note));
}

function proveStep(session, possession) {
  const token = session.client && session.client.auth_token;
  const authenticate = async (outcome, what) => {
    await sandbox('prove/control/authenticate', { auth_token: token, outcome });
    say(`Prove: ${what}. The gateway reads Prove's verdict on the next GET.`);
  };
  if (possession === 'none') {
    return [el('p', {}, 'No possession check: Prove decided at the start, from the number and the name.')];
  }
  if (!token) return [el('p', {}, 'Prove gave no auth_token: nothing to do on the phone.')];
  if (possession === 'desktop') {
    return [
      el('p', {}, "Prove texts the user an Instant Link; tapping it on the phone proves possession. In your app, Prove's client SDK (Authenticate()) waits for the tap."),
      el('div', { class: 'phone', role: 'group', 'aria-label': 'Simulated phone' },
        el('p', { class: 'sms' }, 'SMS from Prove: tap to verify your number: https://app.example/verified (simulated)'),
        outcomeButton('prove-tap', 'Tap the Instant Link (possession passed)', 'Prove confirms the number, then verifies the identity.', () => authenticate('passed', 'the link was tapped')),
        outcomeButton('prove-timeout', 'Ignore the SMS (possession times out)', "Prove's possession window closes: the session expires (possession_timeout).", () => authenticate('timed_out', 'the link was never tapped'))),
    ];
  }
  // One-time code. ASSUMPTION (sandbox): the simulator does not send or check codes, so this page
  // shows one on a simulated phone and compares what the user types; Prove's SDK does both for real.
  const code = String(Math.floor(1000 + Math.random() * 9000));
  const input = el('input', { id: 'otp', type: 'text', inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: '6' });
  const form = el('form', { id: 'otp-form' },
    el('label', { for: 'otp' }, 'Code from the SMS'),
    el('div', { class: 'row' }, input, el('button', { type: 'submit' }, 'Verify code')),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const right = input.value.trim() === code;
    try {
      await authenticate(right ? 'passed' : 'failed', right ? 'the right code was entered' : 'a wrong code was entered');
    } catch (error) {
      say(`Prove: ${error.message}`);
    }
  });
  return [
    el('p', {}, "Prove texts a one-time code; the user types it into your app, where Prove's client SDK (Authenticate()) checks it. A wrong code fails possession (possession_failed)."),
    el('div', { class: 'phone', role: 'group', 'aria-label': 'Simulated phone' },
      el('p', { class: 'sms' }, 'SMS from Prove: your code is ', el('strong', { id: 'otp-code' }, code), ' (simulated)')),
    form,
    outcomeButton('prove-timeout', 'Never enter the code (possession times out)', "Prove's possession window closes: the session expires (possession_timeout).", () => authenticate('timed_out', 'no code was entered')),
  ];
}

function passbaseStep(session, options) {
  const panel = el('div', { id: 'passbase-decide' });
  const decide = (action, label, note) =>
    outcomeButton(`passbase-${action}`, label, note, async () => {
      await sandbox(`passbase/control/identities/${encodeURIComponent(current.identity)}`, { action });
      say(`Passbase: ${label}. Its webhook reached the gateway.`);
    });
  const finish = el('button', { id: 'passbase-verify', type: 'button' }, 'Verify with Passbase (stand-in button)');
  finish.addEventListener('click', async () => {
    finish.disabled = true;
    try {
      // The user completes Passbase's flow, which returns our reference as the identity's metadata.
      const made = await sandbox('passbase/control/identities', {
        metadata: JSON.parse(session.client.metadata), document_type: options.document_type, country: options.country,
      });
      current.identity = made.identity_access_key;
      // The SDK's onFinish({ identityAccessKey }): the app links the key to its session.
      await api('POST', `/v1/sessions/${session.id}/link`, { identity_access_key: made.identity_access_key });
      say(`Passbase: onFinish gave identity access key ${made.identity_access_key}; the app linked it. Passbase is processing.`);
      panel.replaceChildren(
        el('p', {}, `onFinish: identityAccessKey ${made.identity_access_key} (linked). Now Passbase decides:`),
        decide('approve', 'Passbase approves', 'VERIFICATION_COMPLETED, approved: the session is verified.'),
        decide('decline', 'Passbase declines', 'VERIFICATION_COMPLETED, declined: the session fails (declined).'),
        decide('hold_for_review', 'Hold for your manual review', 'VERIFICATION_COMPLETED, pending: the session is processing until you review.'),
        decide('review_approve', 'Review: approve', 'VERIFICATION_REVIEWED, approved: verified.'),
        decide('review_decline', 'Review: decline', 'VERIFICATION_REVIEWED, declined: failed (declined).'),
      );
    } catch (error) {
      finish.disabled = false;
      say(`Passbase: ${error.message}`);
    }
  });
  panel.append(finish, el('p', { class: 'help' }, "Stands for Passbase's verification button: the user captures a document and a selfie in Passbase's SDK, which hands your app the identity access key (onFinish)."));
  return [el('p', {}, `Your backend passes client.metadata (${session.client.metadata}) to the SDK as metaData, encrypted with your Passbase key.`), panel];
}

function renderStep() {
  const { session, provider } = current;
  const client = session.client || {};
  let parts;
  switch (provider) {
    case 'authento':
      parts = hostedStep(client.verify_url, "Open Authento's verification page", "Authento's hosted page takes the user's documents; its reviewers decide. Authento's own example opens it in a popup.");
      break;
    case 'nevis':
      parts = hostedStep(client.start_url, "Open Nevis's welcome page", "Nevis's welcome page asks for consent, then captures a document and a selfie (on a phone: desktop users get a QR code).");
      break;
    case 'stripe':
      parts = hostedStep(client.url, "Open Stripe's verification page", "Stripe's hosted page captures the document (and selfie); in test mode you choose the result.");
      break;
    case 'prove':
      parts = proveStep(session, current.possession);
      break;
    case 'passbase':
      parts = passbaseStep(session, current.passbase);
      break;
    default:
      parts = [];
  }
  $('step').replaceChildren(el('div', { class: 'panel' }, el('h3', {}, `The user's step at ${NAMES[provider]}`), ...parts));
}

// --- watching ------------------------------------------------------------------------------

function render(session) {
  $('s-id').textContent = session.id;
  $('s-provider').textContent = session.provider;
  const badge = $('s-status');
  badge.textContent = session.status;
  badge.className = `badge ${session.status}`;
  $('s-provider-status').textContent = session.provider_status ?? 'none yet';
  $('s-last-error').textContent = session.last_error ? `${session.last_error.code}: ${session.last_error.message}` : 'none';
  $('s-expires').textContent = session.expires_at ?? 'never (the provider documents no expiry)';
  $('s-updated').textContent = session.updated_at;
  $('cancel').disabled = TERMINAL.includes(session.status);
  const state = `${session.status}|${session.provider_status}|${session.last_error ? session.last_error.code : ''}`;
  if (state !== seen) {
    const first = seen === '';
    seen = state;
    const error = session.last_error ? `, last_error ${session.last_error.code}` : '';
    const line = `${session.status} (provider status ${session.provider_status ?? 'none'}${error})`;
    $('history').append(el('li', {}, `${new Date().toLocaleTimeString()}: ${line}`));
    if (!first) {
      say(`Session is now ${line}.`);
      listSessions();
    }
  }
}

function watch() {
  clearTimeout(poller);
  const id = current.session.id;
  const tick = async () => {
    if (!current || current.session.id !== id) return;
    let status = current.session.status;
    try {
      const session = await api('GET', `/v1/sessions/${id}`);
      if (!current || current.session.id !== id) return;   // another session was started meanwhile
      current.session = { ...session, client: current.session.client };
      status = session.status;
      render(current.session);
    } catch (error) {
      say(`Reading the session failed: ${error.message}`);
    }
    // A decision may still be overturned (a review, a reset): keep reading, less often.
    if (!FINAL.includes(status)) poller = setTimeout(tick, TERMINAL.includes(status) ? 3000 : 1000);
  };
  poller = setTimeout(tick, 1000);
}

async function cancel() {
  if (!current) return;
  try {
    const id = current.session.id;
    const session = await api('POST', `/v1/sessions/${id}/cancel`);
    if (current.session.id !== id) return;
    current.session = { ...session, client: current.session.client };
    render(current.session);
  } catch (error) {
    say(`Cancel refused: ${error.message}`);
  }
}

// --- listing -------------------------------------------------------------------------------

async function listSessions(event) {
  if (event) event.preventDefault();
  const user = $('list-user').value.trim();
  const body = $('sessions').tBodies[0];
  try {
    const page = await api('GET', `/v1/users/${encodeURIComponent(user)}/sessions`);
    const rows = (page.data || []).map((s) =>
      el('tr', {}, el('td', {}, s.id), el('td', {}, s.provider), el('td', {}, s.status), el('td', {}, s.created_at)));
    body.replaceChildren(...rows);
    if (!rows.length) body.replaceChildren(el('tr', {}, el('td', { colspan: '4' }, 'No sessions for this user.')));
  } catch (error) {
    body.replaceChildren(el('tr', {}, el('td', { colspan: '4' }, error.message)));
  }
}

// --- wiring --------------------------------------------------------------------------------

function showProviderFields() {
  const provider = $('provider').value;
  for (const fieldset of document.querySelectorAll('.provider-fields')) {
    fieldset.hidden = fieldset.dataset.provider !== provider;
  }
}

document.addEventListener('DOMContentLoaded', () => {
  const injected = document.querySelector('meta[name="idv-api-key"]').content;
  $('api-key').value = injected;
  $('provider').addEventListener('change', showProviderFields);
  $('start').addEventListener('submit', start);
  $('cancel').addEventListener('click', cancel);
  $('list').addEventListener('submit', listSessions);
  showProviderFields();
});
