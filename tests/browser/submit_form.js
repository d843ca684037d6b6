// node submit_form.js PLAYWRIGHT_CORE_DIR URL — a person filling in a formpipe form in
// Debian's chromium (headless): opens GET URL, finds every field by its label, tries a
// roll number the form's pattern refuses (the browser must block the submit), then
// fills it correctly, submits, and waits for the confirmation page. Prints one JSON
// line {"status", "blocked", "heading", "id"} for the test to check; exits nonzero
// with a readable line on any failure.
'use strict';
const [pwDir, url] = process.argv.slice(2);
if (!pwDir || !url) {
  console.error('usage: submit_form.js PLAYWRIGHT_CORE_DIR URL');
  process.exit(2);
}
const { chromium } = require(pwDir);

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    timeout: 60000,
  });
  try {
    const page = await browser.newPage();
    const resp = await page.goto(url, { timeout: 30000 });
    await page.getByLabel('Full name').fill('Ada Lovelace');
    await page.getByLabel('Roll number').fill('12a');
    await page.getByLabel('University').fill('University of London');
    await page.getByLabel('CGPA').fill('9.5');
    await page.getByLabel('Gender').selectOption('F');
    await page.getByLabel('Age').fill('27');
    await page.getByLabel('E-mail').fill('ada@example.com');
    await page.getByRole('button', { name: 'Submit' }).click();
    // The pattern ^[0-9]{1,10}$ refuses "12a": the browser keeps the page and marks it.
    const blocked = await page.$eval('#f-roll', (el) => !el.validity.valid) && page.url() === url &&
                    (await page.getByRole('button', { name: 'Submit' }).count()) === 1;
    await page.getByLabel('Roll number').fill('1815');
    const [answer] = await Promise.all([
      page.waitForNavigation({ timeout: 30000 }),
      page.getByRole('button', { name: 'Submit' }).click(),
    ]);
    const heading = (await page.textContent('h1')).trim();
    const id = (await page.textContent('code')).trim();
    console.log(JSON.stringify({ status: resp.status(), answer: answer.status(), blocked, heading, id }));
  } finally {
    await browser.close();
  }
})().catch((e) => {
  console.error('submit_form.js: ' + String(e.message || e).split('\n')[0]);
  process.exit(1);
});
