// End-to-end tests of the storefront and the operator's console in
// Debian's chromium, driven by playwright-core, against a real
// `mercato serve` that server/tests/it/browser.rs starts (it passes the
// address, the admin token and where screenshots go).
//
// Each scenario waits for conditions with bounded timeouts, never for a
// length of time. Any console error or uncaught exception on a page (a
// Content Security Policy violation among them) fails the run.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BASE = process.env.MERCATO_URL;
const ADMIN_TOKEN = process.env.MERCATO_ADMIN_TOKEN;
const ARTIFACTS = process.env.MERCATO_ARTIFACTS || 'artifacts';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
if (!BASE || !ADMIN_TOKEN) {
  console.error('MERCATO_URL and MERCATO_ADMIN_TOKEN must be set (server/tests/it/browser.rs sets them)');
  process.exit(2);
}
mkdirSync(ARTIFACTS, { recursive: true });

const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };
/** The longest any one condition is waited for. */
const WAIT_MS = 30_000;

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
    '--no-first-run', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
  ],
});

const pageErrors = [];
const screenshots = [];

async function newContext(name) {
  const context = await browser.newContext({ viewport: DESKTOP, baseURL: BASE });
  context.setDefaultTimeout(WAIT_MS);
  context.on('page', (page) => watch(page, name));
  return context;
}

function watch(page, name) {
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    // Chromium logs every 4xx answer; the scenarios cause some on purpose
    // and check that the page puts them in words. Anything else counts.
    if (/^Failed to load resource: the server responded with a status of 4\d\d/.test(message.text())) return;
    pageErrors.push(`${name} ${page.url()}: ${message.text()}`);
  });
  page.on('pageerror', (error) => pageErrors.push(`${name} ${page.url()}: ${error.message}`));
  page.on('dialog', (dialog) => dialog.accept());
}

/** Loads `path` and waits until the page module has rendered it. */
async function open(page, path) {
  await page.goto(path);
  await page.waitForSelector('body[data-ready="true"]');
}

/** Every visible form control has a label a screen reader can read. */
async function assertLabelled(page) {
  const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input, select, textarea')]
    .filter((control) => control.type !== 'hidden')
    .filter((control) => !(control.labels && control.labels.length) && !control.getAttribute('aria-label'))
    .map((control) => control.outerHTML));
  if (unlabelled.length) throw new Error(`unlabelled controls on ${page.url()}: ${unlabelled.join(', ')}`);
}

async function shoot(page, name) {
  await assertLabelled(page);
  const file = join(ARTIFACTS, `${name}-${page.viewportSize().width}.png`);
  await page.screenshot({ path: file, fullPage: true });
  screenshots.push({ name, path: new URL(page.url()).pathname + new URL(page.url()).search, file });
}

function expect(condition, message) {
  if (!condition) throw new Error(message);
}

async function textOf(page, selector) {
  return (await page.locator(selector).first().textContent()).trim();
}

/** Waits until the order page's status badge says `status`. */
async function waitForStatus(page, status) {
  await page.locator(`#order-live .status[data-status="${status}"]`).waitFor();
}

async function availableOn(page) {
  const line = page.locator('#availability[data-available]');
  await line.waitFor();
  return Number(await line.getAttribute('data-available'));
}

async function checkout(page, card) {
  await open(page, '/checkout');
  await page.fill('#email', 'ada@example.com');
  await page.fill('#address', '1 Analytical Row, London');
  await page.check(`input[name=card][value="${card}"]`);
  await page.click('#place-order');
  await page.waitForURL(/\/orders\/[0-9a-f-]{36}$/);
  await page.waitForSelector('body[data-ready="true"]');
  return page.url().split('/').pop();
}

const results = [];
async function scenario(name, run) {
  try {
    await run();
    results.push([name, null]);
    console.log(`ok - ${name}`);
  } catch (error) {
    results.push([name, error]);
    console.log(`not ok - ${name}\n  ${String(error.stack || error).split('\n').join('\n  ')}`);
  }
}

const shopper = await newContext('shopper');
const shop = await shopper.newPage();
const state = {};

await scenario('a shopper finds a product with a typo, filters by a facet, adds two items and pays with the succeeding card', async () => {
  await open(shop, '/sign-in');
  await shoot(shop, 'sign-in');
  await shop.fill('#name', 'Ada@Example.com');
  await shop.click('#main form button[type=submit]');
  await shop.waitForURL(`${BASE}/`);
  await shop.waitForSelector('body[data-ready="true"]');
  await shop.locator('#who').getByText('ada@example.com').waitFor();

  // "sumitcraft" is one letter short of the brand.
  await shop.fill('#q', 'sumitcraft yoga');
  await shop.press('#q', 'Enter');
  await shop.waitForURL(/q=sumitcraft/);
  await shop.waitForSelector('body[data-ready="true"]');
  const names = await shop.locator('.results .card h3').allTextContents();
  expect(names.some((name) => name.includes('Summitcraft')), `the typo found nothing of Summitcraft: ${names}`);
  await shoot(shop, 'search');

  await shop.locator('ul[data-facet="brand"] a[data-value="Summitcraft"]').click();
  await shop.waitForURL(/brand=Summitcraft/);
  await shop.waitForSelector('body[data-ready="true"]');
  const brands = await shop.locator('.results .card .meta').allTextContents();
  expect(brands.length >= 2, `fewer than two Summitcraft products: ${brands}`);
  expect(brands.every((meta) => meta.startsWith('Summitcraft')), `the facet let others through: ${brands}`);
  await shop.locator('ul[data-facet="brand"] a[aria-current="true"]').waitFor();
  await shoot(shop, 'search-facet');

  const cards = shop.locator('.results .card');
  state.firstProduct = Number(await cards.nth(0).getAttribute('data-product-id'));
  state.secondProduct = Number(await cards.nth(1).getAttribute('data-product-id'));
  await cards.nth(0).getByRole('button', { name: 'Add to cart' }).click();
  await shop.locator('#cart-status .notice').waitFor();
  await cards.nth(1).getByRole('button', { name: 'Add to cart' }).click();
  await shop.locator('#cart-link', { hasText: 'Cart (2)' }).waitFor();

  await open(shop, '/cart');
  expect(await shop.locator('tbody tr').count() === 2, 'the cart does not hold two lines');
  // Change a quantity: the subtotal follows.
  const subtotalBefore = await textOf(shop, '#subtotal');
  await shop.fill(`#qty-${state.secondProduct}`, '2');
  await shop.locator(`tr[data-product-id="${state.secondProduct}"]`).getByRole('button', { name: 'Update' }).click();
  await shop.waitForFunction((before) => document.querySelector('#subtotal')?.textContent !== before, subtotalBefore);
  await shop.locator('#cart-link', { hasText: 'Cart (3)' }).waitFor();
  await shoot(shop, 'cart');
  await open(shop, '/checkout');
  await shoot(shop, 'checkout');
  state.paidOrder = await checkout(shop, 'tok_visa');
  await waitForStatus(shop, 'CONFIRMED');
  expect((await textOf(shop, '#order-headline')).includes('confirmed'), 'no confirmation in words');
  await shop.locator('#saga td', { hasText: 'process payment' }).first().waitFor();
  await shoot(shop, 'order-confirmed');

  await open(shop, '/orders');
  await shop.locator(`a[href="/orders/${state.paidOrder}"]`).waitFor();
  await shoot(shop, 'orders');
});

await scenario('a declined card shows the failure and the stock comes back', async () => {
  const product = state.firstProduct ?? 1;
  await open(shop, `/products/${product}`);
  const before = await availableOn(shop);
  await shoot(shop, 'product');
  await shop.fill('#quantity', '1');
  await shop.click('#add-to-cart');
  await shop.locator('#cart-status .notice').waitFor();
  const orderId = await checkout(shop, 'tok_chargeDeclined');
  await waitForStatus(shop, 'PAYMENT_FAILED');
  const headline = await textOf(shop, '#order-headline');
  expect(headline.includes('card was declined'), `the failure is not in words: ${headline}`);
  await shop.locator('#saga td', { hasText: 'release inventory' }).first().waitFor();
  await shoot(shop, 'order-payment-failed');
  state.declinedOrder = orderId;

  await open(shop, `/products/${product}`);
  await shop.waitForFunction(
    (expected) => Number(document.querySelector('#availability')?.dataset.available) === expected,
    before,
    { timeout: WAIT_MS },
  );
  // The failed order's line is still in the cart: empty it for the next scenario.
  await open(shop, '/cart');
  while (await shop.getByRole('button', { name: /^Remove / }).count()) {
    const count = await shop.locator('tbody tr').count();
    await shop.getByRole('button', { name: /^Remove / }).first().click();
    await shop.waitForFunction((n) => document.querySelectorAll('tbody tr').length < n, count);
  }
});

await scenario('the delayed card confirms later on the open page', async () => {
  const product = state.secondProduct ?? 2;
  await open(shop, `/products/${product}`);
  await shop.click('#add-to-cart');
  await shop.locator('#cart-status .notice').waitFor();
  const orderId = await checkout(shop, 'tok_delayed');
  // The page stays the same document from here on: a marker survives.
  await shop.evaluate(() => { window.stillTheSamePage = true; });
  await waitForStatus(shop, 'AWAITING_PAYMENT');
  await shoot(shop, 'order-awaiting-payment');
  await waitForStatus(shop, 'CONFIRMED');
  expect(await shop.evaluate(() => window.stillTheSamePage === true), 'the page was reloaded');
  state.delayedOrder = orderId;
});

const operator = await newContext('admin');
const console_ = await operator.newPage();

await scenario('the admin sees the order, ships it, and the shopper sees it shipped', async () => {
  expect(state.paidOrder, 'no paid order from the first scenario');
  await open(console_, '/admin');
  await shoot(console_, 'admin-sign-in');
  await console_.fill('#admin-token', ADMIN_TOKEN);
  await console_.click('#main form button[type=submit]');
  await console_.locator('h1', { hasText: 'Stock' }).waitFor();
  await console_.locator('tbody tr[data-product-id]').first().waitFor();
  await shoot(console_, 'admin-stock');

  await open(console_, '/admin/orders?status=CONFIRMED');
  await console_.locator(`tr[data-order-id="${state.paidOrder}"]`).waitFor();
  await shoot(console_, 'admin-orders');
  await console_.locator(`tr[data-order-id="${state.paidOrder}"] a`).click();
  await console_.waitForSelector('body[data-ready="true"]');
  await console_.locator('#ship').waitFor();
  await shoot(console_, 'admin-order');

  // The shopper keeps the order page open while the admin ships.
  await open(shop, `/orders/${state.paidOrder}`);
  await waitForStatus(shop, 'CONFIRMED');
  await shop.evaluate(() => { window.stillTheSamePage = true; });

  await console_.fill('#carrier', 'Parcelforce');
  await console_.fill('#tracking', 'PF123456789GB');
  await console_.click('#ship');
  await console_.locator('.status[data-status="SHIPPED"]').waitFor();

  await waitForStatus(shop, 'SHIPPED');
  const headline = await textOf(shop, '#order-headline');
  expect(headline.includes('Parcelforce') && headline.includes('PF123456789GB'), `no carrier and tracking: ${headline}`);
  expect(await shop.evaluate(() => window.stillTheSamePage === true), 'the shopper\'s page was reloaded');
  await shoot(shop, 'order-shipped');

  // Refunds: too much is refused in words; a part goes through.
  await console_.fill('#refund-amount', '99999.00');
  await console_.getByRole('button', { name: 'Refund' }).click();
  const refused = await textOf(console_, '#order-status .problem');
  expect(refused.includes('more than is left to refund'), `the refusal is not in words: ${refused}`);
  await console_.fill('#refund-amount', '1.00');
  await console_.getByRole('button', { name: 'Refund' }).click();
  await console_.locator('#order-status .notice', { hasText: 'Refunded' }).waitFor();
  await console_.getByText(/partially refunded/).waitFor();

  // Delivered, live on the shopper's page too.
  await console_.click('#deliver');
  await console_.locator('.status[data-status="DELIVERED"]').waitFor();
  await waitForStatus(shop, 'DELIVERED');
  expect(await shop.evaluate(() => window.stillTheSamePage === true), 'the shopper\'s page was reloaded');
});

await scenario('a shopper cancels an order awaiting payment and the operator sees reservations counting down', async () => {
  const product = state.firstProduct ?? 1;
  // A reservation the operator can watch (held for a made-up order).
  const reserved = await fetch(`${BASE}/api/v1/inventory/reserve`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ order_id: '0193a5c4-0000-7000-8000-00000000b0b0', items: [{ product_id: product, quantity: 1 }], ttl_seconds: 600 }),
  });
  expect(reserved.status === 201, `reserving answered ${reserved.status}`);
  await open(console_, `/admin?q=${product}`);
  const row = console_.locator(`tr[data-product-id="${product}"]`);
  await row.getByRole('button', { name: 'Reservations' }).click();
  const deadline = console_.locator('td[data-expires-at]').first();
  await deadline.waitFor();
  const first = await deadline.textContent();
  expect(/\d+ min \d+ s/.test(first), `no countdown: ${first}`);
  await console_.waitForFunction((text) => document.querySelector('td[data-expires-at]')?.textContent !== text, first);
  await shoot(console_, 'admin-reservations');

  await open(shop, `/products/${product}`);
  await shop.click('#add-to-cart');
  await shop.locator('#cart-status .notice').waitFor();
  await checkout(shop, 'tok_delayed');
  await waitForStatus(shop, 'AWAITING_PAYMENT');
  await shop.click('#cancel-order');
  await waitForStatus(shop, 'CANCELLED');
  expect((await textOf(shop, '#order-headline')).includes('cancelled'), 'no cancellation in words');
  // Released (or, had the delayed payment gone through first, refunded).
  await shop.locator('#saga td', { hasText: /release inventory|refund payment/ }).first().waitFor();
  expect(await shop.locator('#cancel-order').count() === 0, 'a cancelled order still offers cancel');
});

await scenario('the admin adjusts stock and the product page updates live', async () => {
  const product = state.firstProduct ?? 1;
  await open(shop, `/products/${product}`);
  const before = await availableOn(shop);
  await shop.evaluate(() => { window.stillTheSamePage = true; });

  await open(console_, `/admin?q=${product}`);
  const row = console_.locator(`tr[data-product-id="${product}"]`);
  await row.waitFor();
  await console_.fill(`#delta-${product}`, '7');
  await row.getByRole('button', { name: 'Adjust' }).click();
  await console_.locator('#stock-status .notice').waitFor();

  await shop.waitForFunction(
    (expected) => Number(document.querySelector('#availability')?.dataset.available) === expected,
    before + 7,
    { timeout: WAIT_MS },
  );
  expect(await shop.evaluate(() => window.stillTheSamePage === true), 'the product page was reloaded');


  await open(console_, '/admin/events');
  await console_.locator('#stream-state', { hasText: 'Connected' }).waitFor();
  // A change made now shows in the console's event list, and the charts
  // have their second sample.
  const adjusted = await fetch(`${BASE}/api/v1/inventory/${product}/adjust`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ delta: 1 }),
  });
  expect(adjusted.ok, `adjusting stock answered ${adjusted.status}`);
  await console_.locator('#events li').first().waitFor();
  await console_.locator('.chart p', { hasText: 'now:' }).nth(3).waitFor();
  await console_.locator('tr[data-status="DELIVERED"] td', { hasText: '1' }).waitFor();
  await shoot(console_, 'admin-live');
});

await scenario('every page is usable at phone width', async () => {
  const pages = [
    [shop, '/?q=sumitcraft%20yoga', 'search'],
    [shop, `/products/${state.firstProduct ?? 1}`, 'product'],
    [shop, '/cart', 'cart'],
    [shop, '/orders', 'orders'],
    [shop, `/orders/${state.paidOrder}`, 'order-shipped'],
    [shop, `/orders/${state.declinedOrder}`, 'order-payment-failed'],
    [shop, '/sign-in', 'sign-in'],
    [console_, '/admin', 'admin-stock'],
    [console_, '/admin/orders', 'admin-orders'],
    [console_, `/admin/orders/${state.paidOrder}`, 'admin-order'],
    [console_, '/admin/events', 'admin-live'],
  ];
  for (const [page, path, name] of pages) {
    await page.setViewportSize(PHONE);
    await open(page, path);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow <= 1, `${path} scrolls sideways at phone width by ${overflow}px`);
    await shoot(page, name);
  }
  // The checkout needs a cart with something in it.
  await open(shop, `/products/${state.firstProduct ?? 1}`);
  await shop.click('#add-to-cart');
  await shop.locator('#cart-status .notice').waitFor();
  await open(shop, '/checkout');
  await shoot(shop, 'checkout');
  await shop.setViewportSize(DESKTOP);
  await console_.setViewportSize(DESKTOP);
});

await scenario('no page logged an error or broke its content security policy', async () => {
  expect(pageErrors.length === 0, `page errors:\n${pageErrors.join('\n')}`);
});

await browser.close();
const failed = results.filter(([, error]) => error).length;
console.log(`screenshots: ${screenshots.length} in ${ARTIFACTS}`);
console.log(`${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
