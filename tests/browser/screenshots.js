// node screenshots.js PLAYWRIGHT_CORE_DIR OUT_DIR FORM_URL [SHEET_HTML] — the guide's
// screenshots, in Debian's chromium (headless) like the browser test: the form page
// filled in as a person would (OUT_DIR/form.png; nothing is submitted) and, when
// SHEET_HTML is given, that page (the sheet after a flush, rendered by
// scripts/screenshots) as OUT_DIR/sheet.png. Exits nonzero with one line on failure.
'use strict';
const path = require('path');
const [pwDir, outDir, formUrl, sheetHtml] = process.argv.slice(2);
if (!pwDir || !outDir || !formUrl) {
  console.error('usage: screenshots.js PLAYWRIGHT_CORE_DIR OUT_DIR FORM_URL [SHEET_HTML]');
  process.exit(2);
}
const { chromium } = require(pwDir);

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--font-render-hinting=none'],
    timeout: 60000,
  });
  try {
    const page = await browser.newPage({ viewport: { width: 820, height: 900 } });
    const resp = await page.goto(formUrl, { timeout: 30000 });
    if (resp.status() !== 200) throw new Error('GET ' + formUrl + ': HTTP ' + resp.status());
    await page.getByLabel('Full name').fill('Ada Lovelace');
    await page.getByLabel('Roll number').fill('1815');
    await page.getByLabel('E-mail').fill('ada@example.com');
    await page.getByLabel('CGPA').fill('9.5');
    await page.screenshot({ path: path.join(outDir, 'form.png'), fullPage: true });
    if (sheetHtml) {
      const sheet = await browser.newPage({ viewport: { width: 1100, height: 400 } });
      await sheet.goto('file://' + path.resolve(sheetHtml));
      await sheet.screenshot({ path: path.join(outDir, 'sheet.png'), fullPage: true });
    }
    console.log('screenshots in ' + outDir);
  } finally {
    await browser.close();
  }
})().catch((e) => {
  console.error('screenshots.js: ' + String(e.message || e).split('\n')[0]);
  process.exit(1);
});
