// Dates and times round trip through a real browser (issue 21): the
// `posts` example (examples/posts.rs) renders `<input type="date">`,
// `datetime-local` and `time`; Chromium fills each and submits the form;
// the page reloaded from the store shows exactly what was typed. Expected
// strings from WHATWG HTML: a valid date string (YYYY-MM-DD), a valid
// normalized local date and time string (a "T", seconds left out when
// zero) and a valid time string.
//
// Run through ./run.sh, which starts the example and sets POSTS_URL.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { users } from './browser.mjs';

const POSTS = process.env.POSTS_URL;
if (!POSTS) throw new Error('POSTS_URL is not set: run the scenarios through e2e/run.sh');

async function open(context) {
  const page = await context.newPage();
  await page.goto(new URL('/posts/1', POSTS).href);
  return page;
}

async function save(page) {
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/posts/1'),
    page.click('button[type="submit"]'),
  ]);
  return response;
}

/** What the page shows for each input, reloaded from the store. */
async function shown(context) {
  const page = await open(context);
  const values = {};
  for (const name of ['published_on', 'announce_at', 'remind_at']) {
    values[name] = await page.getAttribute(`#${name}`, 'value');
    assert.equal(await page.inputValue(`#${name}`), values[name], `${name}: the browser accepts the rendered value`);
  }
  await page.close();
  return values;
}

async function roundTrip(t, typed) {
  const [a, b] = await users(t);
  const pageA = await open(a);
  const pageB = await open(b);
  for (const [name, value] of Object.entries(typed)) await pageA.fill(`#${name}`, value);
  const saved = await save(pageA);
  const sent = Object.fromEntries(new URLSearchParams(saved.request().postData()));
  for (const [name, value] of Object.entries(typed)) assert.equal(sent[name], value, `${name} as the browser sent it`);
  assert.equal(saved.status(), 303);
  assert.deepEqual(await shown(a), typed, 'the store holds what was typed');

  // The reloaded page saves unchanged: what it shows is what the guard
  // fingerprinted, so it is current.
  const again = await open(a);
  assert.equal((await save(again)).status(), 303);
  assert.deepEqual(await shown(a), typed);

  // B opened the post before A's save: the dates take part in the check.
  await pageB.fill('#title', 'B was late');
  assert.equal((await save(pageB)).status(), 409);
}

test('a date, a local date and time and a time with seconds round trip', { timeout: 90_000 }, async (t) => {
  await roundTrip(t, {
    published_on: '2025-02-28',
    announce_at: '2025-12-31T23:59:58',
    remind_at: '07:05:09',
  });
});

test('a local date and time and a time on the minute round trip in their shortest form', { timeout: 90_000 }, async (t) => {
  await roundTrip(t, {
    published_on: '2024-02-29',
    announce_at: '2026-06-01T10:00',
    remind_at: '18:30',
  });
});
