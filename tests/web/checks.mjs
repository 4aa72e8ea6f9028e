// What the browser tests (browser_smoke.mjs, page_faults.mjs) share: a check that prints one
// line and remembers a failure, and the page's count of drawn captions.
let failures = 0;

export function check(ok, what, detail = "") {
  if (!ok) failures++;
  console.log(`${ok ? "ok  " : "FAIL"} ${what}${detail ? `: ${detail}` : ""}`);
}

// The exit status: 1 when any check failed.
export const exitCode = () => (failures ? 1 : 0);

// Captions drawn so far (document.body.dataset.generated, which the page counts up).
export const generated = (page) => page.evaluate(() => Number(document.body.dataset.generated ?? 0));

// Waits until the page has drawn more than `after` captions.
export const waitGenerated = (page, after, timeout = 60_000) =>
  page.waitForFunction((n) => Number(document.body.dataset.generated ?? 0) > n, after, { timeout });
