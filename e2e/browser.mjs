// What the scenario files share: the environment they need and two users
// of a fresh headless Chromium (Debian's, driven by playwright-core).

import { chromium } from 'playwright-core';

/** The flags a root, sandboxless, offline machine needs (see e2e/run.sh). */
export const BROWSER_ARGS = [
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

/** The environment variable `name`, which e2e/run.sh sets. */
export function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the scenarios through e2e/run.sh`);
  return value;
}

/** Two users (browser contexts) of a fresh browser, closed (and killed) when test `t` ends. */
export async function users(t) {
  const server = await chromium.launchServer({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: BROWSER_ARGS,
  });
  let browser;
  t.after(async () => {
    if (browser) await Promise.race([browser.close(), new Promise((r) => setTimeout(r, 10_000))]);
    await server.kill();
  });
  browser = await chromium.connect(server.wsEndpoint(), { timeout: 30_000 });
  const a = await browser.newContext();
  const b = await browser.newContext();
  for (const context of [a, b]) context.setDefaultTimeout(10_000);
  return [a, b];
}
