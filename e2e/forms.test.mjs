// Forms submitted by the browser itself, not by hand-built bodies (issue 15,
// kinds 1, 2, 5 and 6): the `forms` example (examples/forms.rs, merge mode)
// in Chromium. Expected values come from WHATWG HTML: a textarea's
// submitted value has CRLF line breaks and the parser drops one leading LF
// after `<textarea>`; an unchecked checkbox is left out of the entry list;
// a submitter's `formmethod` overrides the form's `method`; the browser
// sends every entry of the form, hidden inputs included.
//
// Run through ./run.sh, which starts the example and sets FORMS_URL. Each
// scenario uses an item of its own (the example holds items 1 to 9).

import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { required, users } from './browser.mjs';

const FORMS = required('FORMS_URL');
const SCREENSHOTS = process.env.SCREENSHOT_DIR ?? join('..', 'target', 'e2e-screenshots');
const TOKEN = '_concurrency_token';

before(() => {
  mkdirSync(SCREENSHOTS, { recursive: true });
});

function scenario(name, fn) {
  return test(name, { timeout: 90_000 }, fn);
}

async function open(context, path) {
  const page = await context.newPage();
  await page.goto(new URL(`/${path}`, FORMS).href);
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

/** The browser's submitted body as name-value pairs (repeated names kept). */
function entries(response) {
  return [...new URLSearchParams(response.request().postData() ?? '')];
}

/** What the store holds for item `id` now. */
async function stored(context, id) {
  const response = await context.request.get(new URL(`/api/items/${id}`, FORMS).href);
  assert.equal(response.status(), 200);
  return response.json();
}

scenario('an untouched textarea sent back with CRLF is not an edit: the merge keeps the other user\'s notes', async (t) => {
  const [a, b] = await users(t);
  const pageA = await open(a, 'items/1');
  const pageB = await open(b, 'items/1');

  await pageA.fill('#notes', 'moved\nhere');
  const savedA = await submission(pageA, '/items/1', () => pageA.click('#save'));
  assert.equal(savedA.status(), 303);
  assert.equal((await stored(a, 1)).notes, 'moved\nhere');

  await pageB.fill('#name', 'Floor lamp');
  const savedB = await submission(pageB, '/items/1', () => pageB.click('#save'));
  // The browser sent the textarea as it showed it: the leading LF dropped by
  // the parser, the line break as CRLF.
  const sent = new Map(entries(savedB));
  assert.equal(sent.get('notes'), 'line1\r\nline2');
  assert.equal(sent.get('name'), 'Floor lamp');
  assert.equal(savedB.status(), 303, 'merged, not a conflict');
  await pageB.waitForURL(/\/items\/1$/);
  await pageB.screenshot({ path: join(SCREENSHOTS, 'forms-textarea-merged.png'), fullPage: true });

  const item = await stored(a, 1);
  assert.equal(item.name, 'Floor lamp', "B's edit");
  assert.equal(item.notes, 'moved\nhere', "A's notes were not reverted");
  assert.equal(item.active, true);
});

scenario('an untouched checkbox another user unchecked stays unchecked after a merge', async (t) => {
  const [a, b] = await users(t);
  const pageA = await open(a, 'items/2');
  const pageB = await open(b, 'items/2');
  assert.equal(await pageB.isChecked('#active'), true);

  await pageA.uncheck('#active');
  const savedA = await submission(pageA, '/items/2', () => pageA.click('#save'));
  assert.equal(savedA.status(), 303);
  // An unchecked box is not in the entry list at all.
  assert.equal(entries(savedA).some(([name]) => name === 'active'), false);
  assert.equal((await stored(a, 2)).active, false);

  // B's page still shows the box checked; B does not touch it.
  assert.equal(await pageB.isChecked('#active'), true);
  await pageB.fill('#name', 'Desk lamp');
  const savedB = await submission(pageB, '/items/2', () => pageB.click('#save'));
  assert.deepEqual(
    entries(savedB).filter(([name]) => name === 'active'),
    [['active', '1']],
    'a checked box sends its value',
  );
  assert.equal(savedB.status(), 303, 'merged, not a conflict');

  const item = await stored(a, 2);
  assert.equal(item.name, 'Desk lamp', "B's edit");
  assert.equal(item.active, false, "A's unchecking was not reverted");
});

scenario('a GET form whose button says formmethod="post" saves; a form to another origin has no token', async (t) => {
  const [a] = await users(t);
  const page = await open(a, 'items/3/rename');
  // The token went where the browser will send a write to this origin...
  assert.equal(await page.locator(`#get-form input[name="${TOKEN}"]`).count(), 1);
  // ...and not where it will send one elsewhere.
  assert.equal(await page.locator(`#elsewhere input[name="${TOKEN}"]`).count(), 0);

  await page.fill('#get-name', 'Renamed by a GET form');
  const saved = await submission(page, '/items/3/rename', () => page.click('#get-post'));
  assert.equal(saved.request().method(), 'POST', 'formmethod overrides the form\'s method');
  assert.equal(new URL(saved.url()).search, '', 'a POST keeps the action as is');
  assert.ok(entries(saved).some(([name]) => name === TOKEN), 'the token was sent');
  assert.equal(saved.status(), 303);
  assert.equal((await stored(a, 3)).name, 'Renamed by a GET form');
});

scenario('a form whose template renders the token gets no second one, and saves', async (t) => {
  const [a] = await users(t);
  const page = await open(a, 'items/4/rename');
  assert.equal(await page.locator(`#own input[name="${TOKEN}"]`).count(), 1);

  await page.fill('#own-name', 'Renamed by its own token');
  const saved = await submission(page, '/items/4/rename', () => page.click('#own-save'));
  assert.equal(entries(saved).filter(([name]) => name === TOKEN).length, 1, 'one token sent');
  assert.equal(saved.status(), 303);
  assert.equal((await stored(a, 4)).name, 'Renamed by its own token');
});
