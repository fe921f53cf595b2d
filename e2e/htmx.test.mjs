// The htmx example (examples/htmx_contacts) in a real browser, once with
// htmx 2 and once with htmx 4, both from npm (package.json: htmx2, htmx4)
// and with htmx's default configuration.
//
// Run through ./run.sh, which starts one example per htmx version and sets
// HTMX2_URL and HTMX4_URL. Each scenario has two users, A and B (two
// browser contexts); within a version the scenarios run in order and each
// uses its own contact.

import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { required, users } from './browser.mjs';

const SCREENSHOTS = process.env.SCREENSHOT_DIR ?? join('..', 'target', 'e2e-screenshots');
const VERSIONS = [
  ['htmx 2', required('HTMX2_URL')],
  ['htmx 4', required('HTMX4_URL')],
];

before(() => {
  mkdirSync(SCREENSHOTS, { recursive: true });
});

async function open(context, base, path) {
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.errors = errors;
  await page.goto(new URL(path, base).href);
  // htmx is loaded and has processed the page.
  await page.waitForFunction(() => window.htmx !== undefined);
  return page;
}

/** Runs `action` and returns the response of the `method` request to `path`. */
async function answer(page, method, path, action) {
  const [response] = await Promise.all([
    page.waitForResponse(
      (r) => r.request().method() === method && new URL(r.url()).pathname === path,
    ),
    action(),
  ]);
  return response;
}

/** Contact `id` as the server has it now (its edit page, fetched by `context`). */
async function stored(context, base, id) {
  const response = await context.request.get(new URL(`/contacts/${id}/edit`, base).href);
  const html = await response.text();
  const value = (name) => html.match(new RegExp(`id="${name}" name="${name}" value="([^"]*)"`))?.[1];
  return { status: response.status(), name: value('name'), email: value('email') };
}

for (const [version, base] of VERSIONS) {
  const shot = (page, name) =>
    page.screenshot({ path: join(SCREENSHOTS, `${version.replace(' ', '')}-${name}.png`), fullPage: true });

  test(`${version}: an hx-post form saves, and a second save from the same page passes too`, { timeout: 90_000 }, async (t) => {
    const [a] = await users(t);
    const page = await open(a, base, '/contacts/1/edit');
    await page.fill('#name', 'Ada King');
    let response = await answer(page, 'POST', '/contacts/1/edit', () => page.click('#contact-form button[type=submit]'));
    assert.equal(response.status(), 200);
    await page.locator('#status', { hasText: 'Saved Ada King.' }).waitFor();
    // The form stayed on the page; its token now describes the data as saved.
    await page.fill('#email', 'ada.king@example.org');
    response = await answer(page, 'POST', '/contacts/1/edit', () => page.click('#contact-form button[type=submit]'));
    assert.equal(response.status(), 200, 'the second save is not a conflict with the first');
    await page.locator('#status', { hasText: 'Saved Ada King.' }).waitFor();
    const now = await stored(a, base, 1);
    assert.equal(now.name, 'Ada King');
    assert.equal(now.email, 'ada.king@example.org');
    assert.deepEqual(page.errors, []);
  });

  test(`${version}: the stale user sees the conflict in place, on a boosted page that keeps its header`, { timeout: 90_000 }, async (t) => {
    const [a, b] = await users(t);
    // A reaches the edit page by a boosted link from the list.
    const pageA = await open(a, base, '/contacts');
    await answer(pageA, 'GET', '/contacts/2/edit', () =>
      pageA.locator('#contact-2').getByRole('link', { name: 'Edit page' }).click(),
    );
    await pageA.locator('#contact-form').waitFor();
    assert.equal(await pageA.evaluate(() => document.title), 'Edit Grace Hopper');
    // B saves a change first.
    const pageB = await open(b, base, '/contacts/2/edit');
    await pageB.fill('#email', 'grace.b@example.org');
    const saved = await answer(pageB, 'POST', '/contacts/2/edit', () => pageB.click('#contact-form button[type=submit]'));
    assert.equal(saved.status(), 200);
    // A, still on the old form, saves.
    await pageA.fill('#name', 'Grace A');
    const refused = await answer(pageA, 'POST', '/contacts/2/edit', () => pageA.click('#contact-form button[type=submit]'));
    assert.equal(refused.status(), 409);
    // The app's own form comes back in place of the form: its labels, what A
    // typed, B's saved value and the alert, inside the page (header kept).
    const alert = pageA.locator('#contact-form #concurrency-conflict-alert');
    await alert.getByText('Your changes have not been saved').waitFor();
    assert.equal(await pageA.locator('#contact-form').count(), 1, 'one form, the app\'s own');
    assert.equal(await pageA.inputValue('#name'), 'Grace A', "A's typing is kept");
    assert.equal(await pageA.inputValue('#email'), 'grace.b@example.org', "B's saved value is shown");
    assert.equal(await pageA.getAttribute('#email', 'aria-invalid'), 'true');
    assert.match(await alert.textContent(), /Email: saved now .grace\.b@example\.org/);
    await pageA.locator('header.app-header').waitFor();
    assert.equal(await pageA.locator('h1', { hasText: 'Edit Grace Hopper' }).count(), 1);
    await shot(pageA, 'conflict-in-place');
    const now = await stored(b, base, 2);
    assert.equal(now.email, 'grace.b@example.org', "B's change is kept");
    assert.equal(now.name, 'Grace Hopper', "A's stale save did not run");
    // A saves again, knowingly: the save passes, and the alert and marks of
    // the conflict it resolved leave the form (the app says "Saved").
    const resolved = await answer(pageA, 'POST', '/contacts/2/edit', () => pageA.click('#contact-form button[type=submit]'));
    assert.equal(resolved.status(), 200);
    await pageA.locator('#status', { hasText: 'Saved Grace A.' }).waitFor();
    await pageA.locator('#concurrency-conflict-alert').waitFor({ state: 'detached' });
    assert.equal(await pageA.locator('#contact-form [aria-invalid], #contact-form .concurrency-conflict').count(), 0);
    assert.equal(await pageA.locator('#contact-form [aria-describedby~="concurrency-conflict-alert"]').count(), 0);
    assert.equal((await stored(b, base, 2)).name, 'Grace A');
    assert.deepEqual(pageA.errors, []);
  });

  test(`${version}: a form re-rendered by its dependent select keeps its token: another user's change is not overwritten`, { timeout: 90_000 }, async (t) => {
    const [a, b] = await users(t);
    const pageA = await open(a, base, '/contacts/3/edit');
    const pageB = await open(b, base, '/contacts/3/edit');
    await pageB.fill('#email', 'wangari.b@example.org');
    const saved = await answer(pageB, 'POST', '/contacts/3/edit', () => pageB.click('#contact-form button[type=submit]'));
    assert.equal(saved.status(), 200);
    // A picks another country: the form comes back with that country's cities.
    const rerender = await answer(pageA, 'GET', '/contacts/3/form', () => pageA.selectOption('#country', 'Japan'));
    assert.equal(rerender.status(), 200);
    assert.match(new URL(rerender.url()).search, /_concurrency_token=/, 'hx-include sends the token');
    await pageA.locator('#city option', { hasText: 'Kyoto' }).waitFor({ state: 'attached' });
    await pageA.selectOption('#city', 'Kyoto');
    const submitted = await answer(pageA, 'POST', '/contacts/3/edit', () => pageA.click('#contact-form button[type=submit]'));
    // 409 (or merged): never an overwrite of B's email with the one A's form showed.
    assert.ok([200, 409].includes(submitted.status()), `status ${submitted.status()}`);
    if (submitted.status() === 409) {
      await pageA.locator('#contact-form #concurrency-conflict-alert').waitFor();
      await shot(pageA, 'rerender-conflict');
    }
    const now = await stored(b, base, 3);
    assert.equal(now.email, 'wangari.b@example.org', "B's change survives A's re-rendered form");
  });

  test(`${version}: inline row editing saves in place`, { timeout: 90_000 }, async (t) => {
    const [a] = await users(t);
    const page = await open(a, base, '/contacts');
    await answer(page, 'GET', '/contacts/1/row/edit', () =>
      page.locator('#contact-1').getByRole('button', { name: 'Edit here' }).click(),
    );
    const row = page.locator('form.row');
    await row.getByLabel('Name').fill('Ada Inline');
    const saved = await answer(page, 'POST', '/contacts/1/row', () => row.getByRole('button', { name: 'Save' }).click());
    assert.equal(saved.status(), 200);
    await page.locator('#contact-1 .name', { hasText: 'Ada Inline' }).waitFor();
    assert.equal((await stored(a, base, 1)).name, 'Ada Inline');
  });

  test(`${version}: a stale delete from the list says "not deleted" and the row stays`, { timeout: 90_000 }, async (t) => {
    const [a, b] = await users(t);
    const pageA = await open(a, base, '/contacts');
    // B changes contact 1 after A's list was rendered.
    const pageB = await open(b, base, '/contacts/1/edit');
    await pageB.fill('#email', `ada.${version.replace(' ', '')}@example.org`);
    const saved = await answer(pageB, 'POST', '/contacts/1/edit', () => pageB.click('#contact-form button[type=submit]'));
    assert.equal(saved.status(), 200);
    const refused = await answer(pageA, 'DELETE', '/contacts/1', () =>
      pageA.locator('#contact-1').getByRole('button', { name: 'Delete' }).click(),
    );
    assert.equal(refused.status(), 409);
    // Shown (htmx 2 too: the layout loads the guard's script), in the row.
    await pageA.locator('#contact-1 [role=alert]', { hasText: 'It has not been deleted' }).waitFor();
    await pageA.locator('#contact-1 .name').waitFor();
    assert.equal((await stored(a, base, 1)).status, 200, 'contact 1 is still there');
    await shot(pageA, 'stale-delete-list');
  });

  test(`${version}: an hx-delete button deletes`, { timeout: 90_000 }, async (t) => {
    const [a] = await users(t);
    const page = await open(a, base, '/contacts');
    const deleted = await answer(page, 'DELETE', '/contacts/2', () =>
      page.locator('#contact-2').getByRole('button', { name: 'Delete' }).click(),
    );
    assert.equal(deleted.status(), 200, await deleted.text());
    await page.locator('#contact-2').waitFor({ state: 'detached' });
    await page.locator('header.app-header').waitFor();
    assert.equal((await stored(a, base, 2)).status, 404);
    assert.deepEqual(page.errors, []);
  });
}
