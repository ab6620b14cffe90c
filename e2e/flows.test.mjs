// Browser tests of the issuer's login, consent and logout flows, driven the
// way a person would: headless Debian Chromium (never a downloaded browser)
// through playwright-core, against the real gatehouse binary,
// examples/login-consent and the demo relying parties of examples/sso.
//
// scripts/e2e.sh starts everything on free loopback ports and passes the
// URLs in the environment. On failure each test saves a screenshot in
// e2e/screenshots/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the browser tests through scripts/e2e.sh`);
  return v.replace(/\/$/, '');
};
const ISSUER = env('ISSUER_URL');
const LOGIN_APP = env('LOGIN_APP_URL');
const WIKI = env('WIKI_URL');
const TICKETS = env('TICKETS_URL');

const here = dirname(fileURLToPath(import.meta.url));
const screenshots = join(here, 'screenshots');

// The launch the project requires: Debian's Chromium, headless, a fresh
// user data directory per test, nothing that phones home.
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

// withBrowser runs fn(page) in a fresh browser profile and saves a
// screenshot of every open page when it throws.
async function withBrowser(name, fn) {
  const userDataDir = mkdtempSync(join(tmpdir(), 'gatehouse-e2e-chromium-'));
  const ctx = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
  });
  ctx.setDefaultTimeout(20_000);
  const page = ctx.pages()[0] ?? await ctx.newPage();
  try {
    await fn(page, ctx);
  } catch (err) {
    mkdirSync(screenshots, { recursive: true });
    const safe = name.replace(/[^a-z0-9]+/gi, '-').toLowerCase();
    for (const [i, p] of ctx.pages().entries()) {
      const file = join(screenshots, `${safe}${i ? '-' + i : ''}.png`);
      await p.screenshot({ path: file, fullPage: true }).catch(() => {});
      console.error(`screenshot: ${file} (at ${p.url()})`);
    }
    throw err;
  } finally {
    await ctx.close();
    rmSync(userDataDir, { recursive: true, force: true });
  }
}

const startsWith = (prefix) => (url) => url.href.startsWith(prefix);

// signIn fills the login form of examples/login-consent.
async function signIn(page, { user = 'alice', password = 'wonderland', remember = false } = {}) {
  await page.waitForURL(startsWith(`${LOGIN_APP}/login?login_challenge=`));
  await page.fill('#username', user);
  await page.fill('#password', password);
  if (remember) await page.check('#remember');
  await page.click('#accept');
}

test('login → consent → callback → logout (wiki, a confidential client with consent)', { timeout: 120_000 }, async () => {
  await withBrowser('login-consent-logout', async (page) => {
    await page.goto(`${WIKI}/`);
    // The relying party sends the browser to the issuer, which sends it to
    // the login app with a challenge.
    await page.waitForURL(startsWith(`${LOGIN_APP}/login?login_challenge=`));
    assert.equal(await page.textContent('#client-name'), 'Team Wiki');

    // A wrong password keeps the user on the form.
    await signIn(page, { password: 'not-the-password' });
    await page.waitForSelector('#login-error');
    assert.match(page.url(), /\/login$/);

    // "Remember me": the issuer keeps a login session, which the logout
    // below has to end (without one it would have nothing to confirm).
    await page.fill('#password', 'wonderland');
    await page.check('#remember');
    await page.click('#accept');

    // Consent: every requested scope is a ticked checkbox; the user
    // withholds email.
    await page.waitForURL(startsWith(`${LOGIN_APP}/consent?consent_challenge=`));
    for (const scope of ['openid', 'offline_access', 'profile', 'email']) {
      assert.equal(await page.isChecked(`#scope-${scope}`), true, `scope ${scope} offered and ticked`);
    }
    await page.uncheck('#scope-email');
    await page.click('#accept');

    // The callback: the wiki exchanged the code and verified the ID token.
    await page.waitForURL(`${WIKI}/`);
    assert.equal(await page.textContent('#user-name'), 'Alice Liddell');
    assert.equal(await page.textContent('#subject'), 'alice');
    assert.equal(await page.locator('#email').count(), 0, 'email was not granted, so the ID token must not carry it');
    const claims = JSON.parse(await page.textContent('#claims'));
    assert.equal(claims.iss, ISSUER);
    assert.equal(claims.sub, 'alice');
    assert.equal(claims.email, undefined);

    // RP-initiated logout through the logout challenge and the login
    // app's confirmation page.
    await page.click('#logout');
    await page.waitForURL(startsWith(`${LOGIN_APP}/logout?logout_challenge=`));
    await page.click('#accept');
    await page.waitForURL(startsWith(`${WIKI}/logged-out`));
    await page.waitForSelector('#signed-out');

    // The issuer's session is gone too: the wiki needs a login again.
    await page.goto(`${WIKI}/`);
    await page.waitForURL(startsWith(`${LOGIN_APP}/login?login_challenge=`));
    await page.waitForSelector('#password');
  });
});

test('central SSO: one login for wiki and tickets; logging out of tickets logs out of wiki (back-channel)', { timeout: 120_000 }, async () => {
  await withBrowser('sso-backchannel', async (page) => {
    await page.goto(`${WIKI}/`);
    await signIn(page, { remember: true });
    await page.waitForURL(startsWith(`${LOGIN_APP}/consent?consent_challenge=`));
    await page.check('#remember');
    await page.click('#accept');
    await page.waitForURL(`${WIKI}/`);
    assert.equal(await page.textContent('#user-name'), 'Alice Liddell');
    assert.equal(await page.textContent('#email'), 'alice@example.com');

    // tickets: no login form and no consent screen (a first-party client
    // with skip_consent), straight back signed in.
    const forms = [];
    page.on('response', (r) => {
      const u = r.url();
      if (r.status() === 200 && (u.startsWith(`${LOGIN_APP}/login`) || u.startsWith(`${LOGIN_APP}/consent`))) forms.push(u);
    });
    await page.goto(`${TICKETS}/`);
    await page.waitForURL(`${TICKETS}/`);
    assert.equal(await page.textContent('#app'), 'Ticket Desk');
    assert.equal(await page.textContent('#user-name'), 'Alice Liddell');
    assert.deepEqual(forms, [], 'SSO must not show a login or consent page');

    // Log out of tickets.
    await page.click('#logout');
    await page.waitForURL(startsWith(`${LOGIN_APP}/logout?logout_challenge=`));
    await page.click('#accept');
    await page.waitForURL(startsWith(`${TICKETS}/logged-out`));

    // The issuer told the wiki through back-channel logout: the wiki's
    // own session is gone and it asks for a login again. (Delivery may be
    // asynchronous: allow it a few seconds.)
    let signedOut = false;
    for (let i = 0; i < 20 && !signedOut; i++) {
      await page.goto(`${WIKI}/`);
      await page.waitForLoadState('load');
      if (page.url().startsWith(`${LOGIN_APP}/login`)) signedOut = true;
      else await page.waitForTimeout(500);
    }
    assert.ok(signedOut, `the wiki still shows a signed-in page at ${page.url()}`);
    await page.waitForSelector('#password');
  });
});

// gatehouse runs `gatehouse perform ...` against the issuer (JSON output,
// a 90 s timeout); find(stderr) is polled for up to 10 s for what the
// test needs from the command's instructions.
async function gatehouse(args, find) {
  const cli = spawn(env('GATEHOUSE_BIN'), ['perform', ...args, '--endpoint', ISSUER, '--format', 'json', '--timeout', '90s'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { cli, stdout: '', stderr: '' };
  cli.stdout.on('data', (d) => { out.stdout += d; });
  cli.stderr.on('data', (d) => { out.stderr += d; });
  out.exited = new Promise((resolve) => cli.on('exit', (code) => resolve(code)));
  for (let i = 0; i < 100 && !out.found; i++) {
    out.found = find(out.stderr);
    if (!out.found) await new Promise((r) => setTimeout(r, 100));
  }
  return out;
}

// userinfoOf waits for the command to succeed, checks that it printed an
// access, ID and refresh token, and returns what /userinfo answers to the
// access token (the consent session's claims).
async function userinfoOf(run) {
  assert.equal(await run.exited, 0, `the command failed:\n${run.stderr}`);
  const tok = JSON.parse(run.stdout);
  assert.ok(tok.access_token && tok.id_token && tok.refresh_token, `tokens: ${Object.keys(tok)}`);
  const r = await fetch(`${ISSUER}/userinfo`, { headers: { Authorization: `Bearer ${tok.access_token}` } });
  assert.equal(r.status, 200);
  return r.json();
}

test('gatehouse perform authorization-code: the printed URL, a browser login, the tokens printed', { timeout: 120_000 }, async () => {
  const port = env('CLI_PORT');
  const run = await gatehouse(['authorization-code', '--port', port, '--client-id', env('CLI_CLIENT_ID'),
    '--client-secret', env('CLI_CLIENT_SECRET'), '--scope', 'openid,offline_access,profile,email'],
  (stderr) => stderr.split('\n').find((l) => l.startsWith(`${ISSUER}/oauth2/auth?`)));
  try {
    const authURL = run.found;
    assert.ok(authURL, `no authorization URL printed:\n${run.stderr}`);

    await withBrowser('perform-authorization-code', async (page) => {
      await page.goto(authURL);
      await signIn(page, { user: 'bob', password: 'builder' });
      await page.waitForURL(startsWith(`${LOGIN_APP}/consent?consent_challenge=`));
      await page.click('#accept');
      await page.waitForURL(startsWith(`http://127.0.0.1:${port}/callback?`));
      assert.equal(await page.textContent('#result'), 'Authorization succeeded');
    });

    const info = await userinfoOf(run);
    assert.equal(info.sub, 'bob');
    assert.equal(info.email, 'bob@example.com');
  } finally {
    if (run.cli.exitCode === null) run.cli.kill('SIGTERM');
  }
});

test('device flow: gatehouse perform device-code polls while the browser enters the code, logs in and consents', { timeout: 120_000 }, async () => {
  const run = await gatehouse(['device-code', '--client-id', env('DEVICE_CLIENT_ID'), '--scope', 'openid,offline_access,profile'],
    (stderr) => stderr.match(/Open (\S+) and enter the code:\n\n {4}(\S+)\n/));
  try {
    assert.ok(run.found, `no user code printed:\n${run.stderr}`);
    const [, verify, userCode] = run.found;
    assert.equal(verify, `${ISSUER}/oauth2/device/verify`);

    await withBrowser('device-flow', async (page) => {
      // The person opens the printed link: the issuer sends the browser
      // to the login app's code entry page with a device challenge.
      await page.goto(verify);
      await page.waitForURL(startsWith(`${LOGIN_APP}/device?device_challenge=`));
      // A typo first: the form comes back with an error.
      await page.fill('#user_code', 'BBBB-BBBB');
      await page.click('#submit');
      await page.waitForSelector('#device-error');
      // Then the code as a person types it: lower case, with a dash.
      await page.fill('#user_code', `${userCode.slice(0, 4).toLowerCase()}-${userCode.slice(4)}`);
      await page.click('#submit');
      await signIn(page, { user: 'bob', password: 'builder' });
      await page.waitForURL(startsWith(`${LOGIN_APP}/consent?consent_challenge=`));
      assert.equal(await page.textContent('#client-name'), 'Living Room TV');
      await page.click('#accept');
      await page.waitForURL(`${LOGIN_APP}/device/done`);
      await page.waitForSelector('#device-done');
    });

    const info = await userinfoOf(run);
    assert.equal(info.sub, 'bob');
    assert.equal(info.name, 'Bob Builder');
  } finally {
    if (run.cli.exitCode === null) run.cli.kill('SIGTERM');
  }
});
