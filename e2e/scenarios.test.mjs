// Two users, one record, a real browser: the examples under the guard.
//
// Run through ./run.sh, which starts the examples and sets INVENTORY_URL,
// SEED_URL, WARN_URL, REBASE_URL, SCREENSHOT_DIR and CHROMIUM. Each scenario has two browser
// contexts (separate profiles: cookies, cache, tabs), A and B.

import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const INVENTORY = required('INVENTORY_URL');
const SEED = required('SEED_URL');
const WARN = required('WARN_URL');
const REBASE = required('REBASE_URL');
const SCREENSHOTS = process.env.SCREENSHOT_DIR ?? join('..', 'target', 'e2e-screenshots');
const CONFLICT_TITLE = 'Someone else changed this record';

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the scenarios through e2e/run.sh`);
  return value;
}

// Each scenario has a browser of its own, run as a server process that this
// one can kill: a browser that hangs while shutting down (seen once in CI, in
// a context's close) must neither hang the run nor leak into the next
// scenario.
const BROWSER_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
];

/** `promise`, or after `ms` a note that it did not settle (cleanup only). */
async function bounded(promise, ms, what, t) {
  let timer;
  const gaveUp = new Promise((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  const outcome = await Promise.race([promise.then(() => 'done', () => 'done'), gaveUp]);
  clearTimeout(timer);
  if (outcome === 'timeout') {
    t.diagnostic(`${what} did not finish within ${ms} ms; the browser was killed`);
  }
}

/** A scenario: like `test`, with a time limit, so a hang fails instead of waiting forever. */
function scenario(name, fn) {
  return test(name, { timeout: 90_000 }, fn);
}

before(() => {
  mkdirSync(SCREENSHOTS, { recursive: true });
});

/**
 * Two users, A and B (two browser contexts: separate, incognito-like
 * profiles) of a fresh browser, closed when the test ends.
 */
async function users(t) {
  const server = await chromium.launchServer({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: BROWSER_ARGS,
  });
  let browser;
  t.after(async () => {
    if (browser) await bounded(browser.close(), 10_000, 'closing the browser', t);
    // SIGKILL to whatever is left of the browser's processes.
    await server.kill();
  });
  browser = await chromium.connect(server.wsEndpoint(), { timeout: 30_000 });
  const a = await browser.newContext();
  const b = await browser.newContext();
  for (const context of [a, b]) context.setDefaultTimeout(10_000);
  return [a, b];
}

async function open(context, base, path = '') {
  const page = await context.newPage();
  await page.goto(new URL(path, base).href);
  return page;
}

/** Runs `action` (a click that submits a form) and returns the POST's response to `path`. */
async function submission(page, path, action) {
  const [response] = await Promise.all([
    page.waitForResponse(
      (r) => r.request().method() === 'POST' && new URL(r.url()).pathname === path,
    ),
    action(),
  ]);
  return response;
}

async function screenshot(page, name) {
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** The conflict page the guard answers with, once it has loaded. */
async function conflictPage(page) {
  const section = page.locator('section.concurrency-conflict');
  await section.getByRole('heading', { name: CONFLICT_TITLE }).waitFor();
  return section;
}

/** What the list page shows for item `id` now, read in a page of its own. */
async function listed(context, id) {
  const page = await open(context, INVENTORY);
  const row = page.locator(`tr[data-id="${id}"]`);
  const shown = {
    name: (await row.locator('td.name').textContent()).trim(),
    stock: Number(await row.locator('td.stock').textContent()),
  };
  await page.close();
  return shown;
}

/** The alert the guard puts first in the app's own form on a conflict. */
async function conflictAlert(page) {
  const alert = page.locator('form #concurrency-conflict-alert[role="alert"]');
  await alert.waitFor();
  return alert;
}

scenario('two users save the same item: the second sees its own edit page, keeps its input, and saves again', async (t) => {
  const [a, b] = await users(t);
  const pageA = await open(a, INVENTORY, 'items/1');
  const pageB = await open(b, INVENTORY, 'items/1');

  await pageA.fill('#name', 'Claw hammer (A)');
  const savedA = await submission(pageA, '/items/1', () => pageA.click('#save'));
  assert.equal(savedA.status(), 303);
  await pageA.waitForURL(/[?&]saved=1/);

  await pageB.fill('#name', 'Claw hammer (B)');
  await pageB.selectOption('#category', 'Garden');
  const refused = await submission(pageB, '/items/1', () => pageB.click('#save'));
  assert.equal(refused.status(), 409);
  const alert = await conflictAlert(pageB);
  await screenshot(pageB, 'inventory-edit-conflict');
  // The app's own page: its header, and its controls as they were.
  assert.equal(await pageB.locator('header a', { hasText: 'Inventory' }).count(), 1);
  assert.equal(await pageB.locator('#category').evaluate((el) => el.tagName), 'SELECT');
  assert.equal(await pageB.locator('#description').evaluate((el) => el.tagName), 'TEXTAREA');
  // What B typed and chose is still there; the name is marked.
  assert.equal(await pageB.inputValue('#name'), 'Claw hammer (B)');
  assert.equal(await pageB.inputValue('#category'), 'Garden');
  assert.equal(await pageB.getAttribute('#name', 'aria-invalid'), 'true');
  // The alert names the field by its label, with the saved value and B's.
  const text = await alert.textContent();
  assert.match(text, /Name: saved now “Claw hammer \(A\)”; you entered “Claw hammer \(B\)”/);
  assert.match(text, /not been saved/);
  // Nothing was written: the record holds A's value.
  assert.equal((await listed(a, 1)).name, 'Claw hammer (A)');

  // B saves again from this page: 303, and the record holds what B chose.
  const savedB = await submission(pageB, '/items/1', () => pageB.click('#save'));
  assert.equal(savedB.status(), 303);
  await pageB.waitForURL(/[?&]saved=1/);
  assert.equal((await listed(a, 1)).name, 'Claw hammer (B)');
  const check = await open(a, INVENTORY, 'items/1');
  assert.equal(await check.inputValue('#category'), 'Garden');
});

scenario('a double click on Save never shows a conflict', async (t) => {
  const [a] = await users(t);
  const page = await open(a, INVENTORY, 'items/4');
  await page.fill('#name', 'Double-clicked');
  const statuses = [];
  page.on('response', (r) => {
    if (r.request().method() === 'POST') statuses.push(r.status());
  });
  await page.dblclick('#save');
  await page.waitForURL(/[?&]saved=4/);
  await page.waitForLoadState();
  await screenshot(page, 'inventory-double-click');
  assert.ok(!statuses.includes(409), `statuses: ${statuses}`);
  assert.equal(await page.locator('#concurrency-conflict-alert').count(), 0);
  assert.equal((await listed(a, 4)).name, 'Double-clicked');

  // Two submissions of the same form as fast as a script can send them.
  const again = await open(a, INVENTORY, 'items/4');
  await again.fill('#name', 'Clicked twice');
  const codes = await again.evaluate(async () => {
    const form = document.querySelector('form[method="post"]');
    const send = () => fetch(form.action, { method: 'POST', body: new URLSearchParams(new FormData(form)), redirect: 'manual' });
    const [x, y] = await Promise.all([send(), send()]);
    return [x.status, y.status];
  });
  assert.ok(!codes.includes(409), `statuses: ${codes}`);
  assert.equal((await listed(a, 4)).name, 'Clicked twice');
});

scenario('seed: a counter incremented in another tab makes the open form stale (409)', async (t) => {
  const [a, b] = await users(t);
  const pageA = await open(a, SEED);
  const pageB = await open(b, SEED);
  const before = Number(await pageA.textContent('#counter'));

  const [tab] = await Promise.all([
    b.waitForEvent('page'),
    pageB.getByRole('link', { name: 'Open another tab…' }).click(),
  ]);
  await tab.waitForLoadState();
  const incremented = await submission(tab, '/counter', () =>
    tab.getByRole('button', { name: 'Increment' }).click(),
  );
  assert.equal(incremented.status(), 303);
  await tab.locator('#counter', { hasText: String(before + 1) }).waitFor();

  await pageA.fill('#some_field_value', 'typed by A');
  const refused = await submission(pageA, '/', () =>
    pageA.getByRole('button', { name: 'Save' }).click(),
  );
  assert.equal(refused.status(), 409);
  // The seed's own page, the counter now, what A typed kept.
  const conflict = await conflictAlert(pageA);
  await screenshot(pageA, 'seed-conflict');
  await conflict.getByText('Other information shown on this page changed', { exact: false }).waitFor();
  assert.equal(Number(await pageA.textContent('#counter')), before + 1);
  assert.equal(await pageA.inputValue('#some_field_value'), 'typed by A');

  // After a reload the form shows the new counter, and saving passes.
  await conflict.getByRole('link', { name: 'discard your changes and reload' }).click();
  await pageA.locator('#some_field_value').waitFor();
  assert.equal(Number(await pageA.textContent('#counter')), before + 1);
  await pageA.fill('#some_field_value', 'typed by A');
  const saved = await submission(pageA, '/', () =>
    pageA.getByRole('button', { name: 'Save' }).click(),
  );
  assert.equal(saved.status(), 303);
  await pageA.locator('#some_field_value').waitFor();
  assert.equal(await pageA.inputValue('#some_field_value'), 'typed by A');
});

scenario('a field that takes no part (views) changes in between: the save passes', async (t) => {
  const [a, b] = await users(t);
  const pageA = await open(a, INVENTORY, 'items/2');
  const viewsA = Number(await pageA.textContent('#views'));
  // B opening the page counts a view: `views` changes under A's form.
  const pageB = await open(b, INVENTORY, 'items/2');
  assert.equal(Number(await pageB.textContent('#views')), viewsA + 1);

  await pageA.fill('#description', 'Now with a brass nozzle.');
  const saved = await submission(pageA, '/items/2', () => pageA.click('#save'));
  assert.equal(saved.status(), 303);
  await pageA.waitForURL(/[?&]saved=2/);

  const check = await open(a, INVENTORY, 'items/2');
  assert.equal(await check.inputValue('#description'), 'Now with a brass nozzle.');
});

scenario('list page: a stale "+1 stock" on a row someone changed is refused; on another row it passes', async (t) => {
  const [a, b] = await users(t);
  const pageA = await open(a, INVENTORY);
  // B has the list open twice, both from before A's change.
  const staleB1 = await open(b, INVENTORY);
  const staleB2 = await open(b, INVENTORY);
  const stock3 = (await listed(a, 3)).stock;
  const stock4 = (await listed(a, 4)).stock;
  const plusOne = (page, id) => page.locator(`tr[data-id="${id}"]`).getByRole('button', { name: '+1 stock' });

  const added = await submission(pageA, '/items/3/stock', () => plusOne(pageA, 3).click());
  assert.equal(added.status(), 303);
  await pageA.locator('tr[data-id="3"] td.stock', { hasText: String(stock3 + 1) }).waitFor();

  const refused = await submission(staleB1, '/items/3/stock', () => plusOne(staleB1, 3).click());
  assert.equal(refused.status(), 409);
  await conflictPage(staleB1);
  await screenshot(staleB1, 'inventory-list-conflict');

  const passed = await submission(staleB2, '/items/4/stock', () => plusOne(staleB2, 4).click());
  assert.equal(passed.status(), 303);
  await staleB2.locator('tr[data-id="4"] td.stock', { hasText: String(stock4 + 1) }).waitFor();

  assert.equal((await listed(b, 3)).stock, stock3 + 1, "B's stale +1 was not applied");
  assert.equal((await listed(b, 4)).stock, stock4 + 1);
});

scenario('early warning: an open form learns it went stale while the user types, and keeps the text', async (t) => {
  const [a, b] = await users(t);
  const pageA = await open(a, WARN, 'items/2');
  const typed = 'A is still typing a long description';
  await pageA.fill('#description', typed);

  const pageB = await open(b, WARN, 'items/2');
  await pageB.fill('#name', 'Changed by B');
  const saved = await submission(pageB, '/items/2', () => pageB.click('#save'));
  assert.equal(saved.status(), 303);

  // Within the interval (1 s here, with jitter and no backoff) A is warned.
  const banner = pageA.locator('.concurrency-guard-warning[role="alert"]');
  await banner.waitFor({ timeout: 10_000 });
  assert.match(await banner.textContent(), /Someone else changed this record/);
  await screenshot(pageA, 'early-warning-banner');
  // What A typed is untouched until A chooses.
  assert.equal(await pageA.inputValue('#description'), typed);

  // Dismissible; and A's save is still refused with 409 as before.
  await banner.getByRole('button', { name: 'Dismiss' }).click();
  await banner.waitFor({ state: 'detached' });
  const refused = await submission(pageA, '/items/2', () => pageA.click('#save'));
  assert.equal(refused.status(), 409);
});

scenario('early warning: an open form learns its record was deleted (no false "changed" banner)', async (t) => {
  const [a, b] = await users(t);
  const pageA = await open(a, WARN, 'items/1');
  await pageA.fill('#description', 'A types into a record B deletes');
  const pageB = await open(b, WARN, 'items/1');
  const deleted = await submission(pageB, '/items/1/delete', () => pageB.click('#delete'));
  assert.ok(deleted.status() < 400, `delete answered ${deleted.status()}`);

  const banner = pageA.locator('.concurrency-guard-warning[role="alert"]');
  await banner.waitFor({ timeout: 10_000 });
  assert.match(await banner.textContent(), /This record was deleted/);
  assert.doesNotMatch(await banner.textContent(), /Someone else changed/);
  await screenshot(pageA, 'early-warning-deleted');
  assert.equal(await pageA.inputValue('#description'), 'A types into a record B deletes');
});

scenario('early warning: a page that stays current shows no banner', async (t) => {
  const [a] = await users(t);
  const pageA = await open(a, WARN, 'items/3');
  // Several check intervals pass (the first check comes after about 1 s).
  await pageA.waitForTimeout(3_500);
  assert.equal(await pageA.locator('.concurrency-guard-warning').count(), 0);
  const saved = await submission(pageA, '/items/3', () => pageA.click('#save'));
  assert.equal(saved.status(), 303);
});

/** The edit page's fields for item `id` as stored now, read in a page of its own. */
async function stored(context, base, id) {
  const page = await open(context, base, `items/${id}`);
  const shown = {
    name: await page.inputValue('#name'),
    description: await page.inputValue('#description'),
  };
  await page.close();
  return shown;
}

/** The value of the page's (first) hidden token input. */
function pageToken(page) {
  return page.locator('input[type="hidden"][name="_concurrency_token"]').first().inputValue();
}

scenario('live rebase: B renames the item while A types a description; A sees the new name and saves both', async (t) => {
  const [a, b] = await users(t);
  // A's pages come with a strict Content-Security-Policy: no inline script,
  // no inline style (the example's own <style> block is refused too).
  await a.route(`${REBASE}**`, async (route) => {
    const response = await route.fetch({ maxRedirects: 0 });
    const headers = { ...response.headers(), 'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'" };
    await route.fulfill({ response, headers });
  });
  const violations = [];
  a.on('console', (m) => {
    if (/Content Security Policy/.test(m.text()) && !/inline style/i.test(m.text())) violations.push(m.text());
  });
  const pageA = await open(a, REBASE, 'items/1');
  const tokenBefore = await pageToken(pageA);
  const typed = 'A typed this while B renamed the item';
  await pageA.fill('#description', typed);

  const pageB = await open(b, REBASE, 'items/1');
  await pageB.fill('#name', 'Renamed by B');
  const saved = await submission(pageB, '/items/1', () => pageB.click('#save'));
  assert.equal(saved.status(), 303);

  // Within the interval (1 s, with jitter) A's Name field shows B's name,
  // highlighted and announced; what A typed is still there.
  await pageA.waitForFunction(() => document.querySelector('#name').value === 'Renamed by B', null, {
    timeout: 10_000,
  });
  // Highlighted through the CSSOM, which the policy allows.
  assert.match(await pageA.$eval('#name', (e) => getComputedStyle(e).outlineStyle), /solid/);
  const live = pageA.locator('.concurrency-guard-live[aria-live="polite"]');
  assert.match(await live.textContent(), /Name was changed by someone else to “Renamed by B”/);
  await screenshot(pageA, 'live-rebase-taken-in');
  assert.equal(await pageA.inputValue('#description'), typed);
  // No banner: nothing to reload. The page's token was swapped.
  assert.equal(await pageA.locator('.concurrency-guard-warning').count(), 0);
  assert.notEqual(await pageToken(pageA), tokenBefore);

  const savedA = await submission(pageA, '/items/1', () => pageA.click('#save'));
  assert.equal(savedA.status(), 303, 'no 409: the page was current');
  await pageA.waitForURL(/[?&]saved=1/);
  assert.deepEqual(await stored(b, REBASE, 1), { name: 'Renamed by B', description: typed });
  assert.deepEqual(violations, [], 'the script runs under the policy');
});

scenario('live rebase: both change Name; A sees both values at the field, keeps theirs or mine, and saves', async (t) => {
  const [a, b] = await users(t);
  const pageA = await open(a, REBASE, 'items/2');
  const tokenBefore = await pageToken(pageA);
  await pageA.fill('#name', 'Name by A');
  await pageA.fill('#description', 'Description by A');

  const pageB = await open(b, REBASE, 'items/2');
  await pageB.fill('#name', 'Name by B');
  const saved = await submission(pageB, '/items/2', () => pageB.click('#save'));
  assert.equal(saved.status(), 303);

  // Both values at the field, with a choice; A's value untouched meanwhile.
  const choice = pageA.locator('.concurrency-guard-choice[role="group"]');
  await choice.waitFor({ timeout: 10_000 });
  assert.match(await choice.textContent(), /Someone else changed this to “Name by B”; yours is “Name by A”/);
  assert.equal(await pageA.inputValue('#name'), 'Name by A');
  assert.match(
    await pageA.locator('.concurrency-guard-live').textContent(),
    /Name was changed by someone else to “Name by B”, and you changed it too/,
  );
  await screenshot(pageA, 'live-rebase-overlap');
  // Until A chooses, the page keeps its old token (a save would be refused).
  assert.equal(await pageToken(pageA), tokenBefore);

  await choice.getByRole('button', { name: 'Keep mine' }).click();
  await choice.waitFor({ state: 'detached' });
  assert.equal(await pageA.inputValue('#name'), 'Name by A');
  assert.notEqual(await pageToken(pageA), tokenBefore);

  const savedA = await submission(pageA, '/items/2', () => pageA.click('#save'));
  assert.equal(savedA.status(), 303, "A's explicit choice goes through");
  await pageA.waitForURL(/[?&]saved=2/);
  assert.deepEqual(await stored(b, REBASE, 2), { name: 'Name by A', description: 'Description by A' });

  // The other way: B changes Name again under A's next page; A takes theirs.
  const again = await open(a, REBASE, 'items/2');
  await again.fill('#name', 'Second try by A');
  const pageB2 = await open(b, REBASE, 'items/2');
  await pageB2.fill('#name', 'Second by B');
  assert.equal((await submission(pageB2, '/items/2', () => pageB2.click('#save'))).status(), 303);
  const choice2 = again.locator('.concurrency-guard-choice');
  await choice2.waitFor({ timeout: 10_000 });
  await choice2.getByRole('button', { name: 'Use theirs' }).click();
  assert.equal(await again.inputValue('#name'), 'Second by B');
  const savedAgain = await submission(again, '/items/2', () => again.click('#save'));
  assert.equal(savedAgain.status(), 303);
  assert.equal((await stored(b, REBASE, 2)).name, 'Second by B');
});

scenario('live rebase: a save before choosing is refused as before', async (t) => {
  const [a, b] = await users(t);
  const pageA = await open(a, REBASE, 'items/3');
  await pageA.fill('#name', 'Mine');
  const pageB = await open(b, REBASE, 'items/3');
  await pageB.fill('#name', 'Theirs');
  assert.equal((await submission(pageB, '/items/3', () => pageB.click('#save'))).status(), 303);
  await pageA.locator('.concurrency-guard-choice').waitFor({ timeout: 10_000 });
  const refused = await submission(pageA, '/items/3', () => pageA.click('#save'));
  assert.equal(refused.status(), 409);
  await conflictAlert(pageA);
  assert.equal((await stored(b, REBASE, 3)).name, 'Theirs');
});

scenario('live rebase: a context value (stock) changed from the list page shows on the open form, which stays current', async (t) => {
  const [a, b] = await users(t);
  const pageA = await open(a, REBASE, 'items/4');
  const stock = Number(await pageA.textContent('#stock'));
  await pageA.fill('#description', 'A edits while B restocks');
  const list = await open(b, REBASE);
  const plusOne = list.locator('tr[data-id="4"]').getByRole('button', { name: '+1 stock' });
  assert.equal((await submission(list, '/items/4/stock', () => plusOne.click())).status(), 303);

  await pageA.locator('#stock', { hasText: String(stock + 1) }).waitFor({ timeout: 10_000 });
  assert.match(
    await pageA.locator('.concurrency-guard-live').textContent(),
    new RegExp(`In stock was changed by someone else to “${stock + 1}”`),
  );
  assert.equal(await pageA.locator('.concurrency-guard-warning').count(), 0);
  const saved = await submission(pageA, '/items/4', () => pageA.click('#save'));
  assert.equal(saved.status(), 303);
  assert.equal((await stored(b, REBASE, 4)).description, 'A edits while B restocks');
});
