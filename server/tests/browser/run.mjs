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
const BASE_WITHOUT_DEMO = process.env.MERCATO_URL_WITHOUT_DEMO_SIGN_IN;
const ADMIN_TOKEN = process.env.MERCATO_ADMIN_TOKEN;
const ARTIFACTS = process.env.MERCATO_ARTIFACTS || 'artifacts';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
if (!BASE || !BASE_WITHOUT_DEMO || !ADMIN_TOKEN) {
  console.error('MERCATO_URL, MERCATO_URL_WITHOUT_DEMO_SIGN_IN and MERCATO_ADMIN_TOKEN must be set (server/tests/it/browser.rs sets them)');
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
/** Requests to anywhere but the servers under test (a CDN, a font host). */
const outsideRequests = [];
const OWN_ORIGINS = new Set([new URL(BASE).origin, new URL(BASE_WITHOUT_DEMO).origin]);

async function newContext(name, baseURL = BASE) {
  const context = await browser.newContext({ viewport: DESKTOP, baseURL });
  context.setDefaultTimeout(WAIT_MS);
  context.on('page', (page) => watch(page, name));
  context.on('request', (request) => {
    const url = new URL(request.url());
    if (url.protocol === 'data:' || url.protocol === 'blob:') return;
    if (!OWN_ORIGINS.has(url.origin)) outsideRequests.push(`${name}: ${request.url()}`);
  });
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

/**
 * Every visible piece of text has WCAG AA contrast against what is behind
 * it: 4.5:1, or 3:1 for large text. Disabled controls are exempt, as WCAG
 * allows.
 */
async function assertContrast(page) {
  const failures = await page.evaluate(() => {
    const parse = (color) => {
      const match = color.match(/rgba?\(([^)]+)\)/);
      if (!match) return null;
      const parts = match[1].split(/[\s,/]+/).filter(Boolean).map(Number);
      return { r: parts[0], g: parts[1], b: parts[2], a: parts.length > 3 ? parts[3] : 1 };
    };
    const luminance = ({ r, g, b }) => {
      const channel = (value) => {
        const v = value / 255;
        return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
      };
      return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
    };
    const behind = (node) => {
      for (let at = node; at; at = at.parentElement) {
        const color = parse(getComputedStyle(at).backgroundColor);
        if (color && color.a > 0) return color;
      }
      return { r: 255, g: 255, b: 255, a: 1 };
    };
    const found = [];
    for (const node of document.body.querySelectorAll('*')) {
      const hasText = [...node.childNodes].some((child) => child.nodeType === Node.TEXT_NODE && child.textContent.trim());
      if (!hasText || !node.getClientRects().length) continue;
      if (node.closest('.visually-hidden, :disabled, option, datalist, noscript')) continue;
      const style = getComputedStyle(node);
      if (style.visibility === 'hidden') continue;
      const ink = parse(style.color);
      const paper = behind(node);
      const [light, dark] = [luminance(ink), luminance(paper)].sort((x, y) => y - x);
      const ratio = (light + 0.05) / (dark + 0.05);
      const size = parseFloat(style.fontSize);
      const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
      if (ratio < (large ? 3 : 4.5)) {
        found.push(`${node.tagName.toLowerCase()}.${node.className} "${node.textContent.trim().slice(0, 30)}" ${ratio.toFixed(2)}:1`);
      }
    }
    return found;
  });
  if (failures.length) throw new Error(`low contrast on ${page.url()}: ${failures.join('; ')}`);
}

/** The page does not scroll sideways (tables scroll inside their box). */
async function assertNoSidewaysScroll(page) {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  expect(overflow <= 1, `${page.url()} scrolls sideways at ${page.viewportSize().width}px by ${overflow}px`);
}

async function settle(page) {
  await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
}

/**
 * Screenshots of the page as it is, at desktop and at phone width (the
 * same document, resized), after checking labels, contrast and, at phone
 * width, that nothing makes the page scroll sideways.
 */
async function shoot(page, name) {
  const size = page.viewportSize();
  for (const viewport of [DESKTOP, PHONE]) {
    await page.setViewportSize(viewport);
    await settle(page);
    await assertLabelled(page);
    await assertContrast(page);
    if (viewport === PHONE) await assertNoSidewaysScroll(page);
    const file = join(ARTIFACTS, `${name}-${viewport.width}.png`);
    await page.screenshot({ path: file, fullPage: true });
    screenshots.push({ name, path: new URL(page.url()).pathname + new URL(page.url()).search, file });
  }
  await page.setViewportSize(size);
  await settle(page);
}

/**
 * Presses Tab until the focused element matches `selector` (at most
 * `stops` times), checking at each stop that the focus is visible: a ring
 * at least 2 px wide, 3:1 against white.
 */
async function tabTo(page, selector, stops = 150) {
  for (let stop = 0; stop < stops; stop++) {
    await page.keyboard.press('Tab');
    const focused = await page.evaluate((wanted) => {
      const active = document.activeElement;
      if (!active || active === document.body) return { none: true };
      const style = getComputedStyle(active);
      const match = style.outlineColor.match(/rgba?\(([^)]+)\)/);
      const [r, g, b] = match ? match[1].split(/[\s,/]+/).map(Number) : [255, 255, 255];
      const channel = (value) => {
        const v = value / 255;
        return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
      };
      const ringContrast = 1.05 / (0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b) + 0.05);
      return {
        what: `${active.tagName.toLowerCase()}#${active.id} "${(active.textContent || active.value || '').trim().slice(0, 30)}"`,
        visible: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2 && ringContrast >= 3,
        matches: active.matches(wanted),
      };
    }, selector);
    if (focused.none) continue;
    expect(focused.visible, `no visible focus on ${focused.what} at ${page.url()}`);
    if (focused.matches) return;
  }
  throw new Error(`${selector} was not reached with ${stops} presses of Tab on ${page.url()}`);
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
  // The facet's count is the number of results it leads to.
  const total = Number((await textOf(shop, '#result-count')).match(/^\d+/)[0]);
  const facet = await textOf(shop, 'ul[data-facet="brand"] a[data-value="Summitcraft"]');
  expect(facet === `Summitcraft (${total})`, `the facet says ${facet}, the results ${total}`);
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
  // The simulated gateway's test cards are listed on the page.
  const testCards = await shop.locator('input[name=card]').evaluateAll((radios) => radios.map((radio) => radio.value));
  expect(['tok_visa', 'tok_chargeDeclined', 'tok_insufficientFunds', 'tok_delayed'].every((card) => testCards.includes(card)), `the test cards listed: ${testCards}`);
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

/** The prices on the search page, in order. */
async function prices(page) {
  return (await page.locator('.results .card .price').allTextContents()).map((text) => Number(text.replace(/[^0-9.]/g, '')));
}

async function resultNames(page) {
  return page.locator('.results .card h3').allTextContents();
}

await scenario('a shopper narrows the results: facet counts, in stock, price range, sorting and pages', async () => {
  // The sample catalog's one sold-out Summitcraft product.
  const soldOut = 'Summitcraft Trail Running Armband - Black';
  await open(shop, '/?brand=Summitcraft');
  const total = Number((await textOf(shop, '#result-count')).match(/^\d+/)[0]);
  expect(await textOf(shop, 'ul[data-facet="brand"] a[data-value="Summitcraft"]') === `Summitcraft (${total})`, 'the brand facet does not count the results');
  const categoryCounts = (await shop.locator('ul[data-facet="category"] a').allTextContents())
    .map((text) => Number(text.match(/\((\d+)\)$/)[1]));
  expect(categoryCounts.reduce((sum, count) => sum + count, 0) === total, `category counts ${categoryCounts} do not add up to ${total}`);
  expect((await resultNames(shop)).includes(soldOut), 'the sold-out product is missing without the filter');
  const soldOutCard = shop.locator('.results .card', { hasText: soldOut });
  await soldOutCard.locator('.stock', { hasText: 'Sold out' }).waitFor();
  expect(await soldOutCard.getByRole('button', { name: 'Add to cart' }).isDisabled(), 'a sold-out result offers Add to cart');

  await shop.check('input[name=in_stock]');
  await shop.getByRole('button', { name: 'Apply filters' }).click();
  await shop.waitForURL(/in_stock=true/);
  await shop.waitForSelector('body[data-ready="true"]');
  const inStock = await resultNames(shop);
  expect(!inStock.includes(soldOut) && inStock.length === total - 1, `in stock only still lists: ${inStock}`);
  await shoot(shop, 'search-in-stock');

  await shop.fill('#min_price', '13');
  await shop.fill('#max_price', '20');
  await shop.selectOption('#sort', 'price_asc');
  await shop.getByRole('button', { name: 'Apply filters' }).click();
  await shop.waitForURL(/sort=price_asc/);
  await shop.waitForSelector('body[data-ready="true"]');
  expect(new URL(shop.url()).searchParams.get('in_stock') === 'true', 'the price filter dropped in stock only');
  const ranged = await prices(shop);
  expect(ranged.length >= 2, `too few results between 13 and 20: ${ranged}`);
  expect(ranged.every((price) => price >= 13 && price <= 20), `prices outside 13 to 20: ${ranged}`);
  expect(ranged.every((price, index) => index === 0 || ranged[index - 1] <= price), `not sorted low to high: ${ranged}`);
  await shoot(shop, 'search-price-sorted');

  // The electronics category is more than a page; high to low, page after page.
  await open(shop, '/?category=electronics&sort=price_desc');
  const firstNames = await resultNames(shop);
  const firstPrices = await prices(shop);
  expect(firstNames.length === 12, `a page holds ${firstNames.length}`);
  await shop.getByRole('link', { name: 'Next page' }).click();
  await shop.waitForURL(/offset=12/);
  await shop.waitForSelector('body[data-ready="true"]');
  const pager = await textOf(shop, '.pager');
  expect(/Showing 13–24 of \d+/.test(pager), `the pager says ${pager}`);
  const secondNames = await resultNames(shop);
  const secondPrices = await prices(shop);
  expect(secondNames.every((name) => !firstNames.includes(name)), 'the second page repeats the first');
  expect(Math.max(...secondPrices) <= Math.min(...firstPrices), `page 2 is not below page 1: ${firstPrices} / ${secondPrices}`);
  await shop.getByRole('link', { name: 'Previous page' }).waitFor();
  await shoot(shop, 'search-page-2');
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
  await shop.locator('#try-again').waitFor();
  await shoot(shop, 'order-payment-failed');
  state.declinedOrder = orderId;

  await open(shop, `/products/${product}`);
  await shop.waitForFunction(
    (expected) => Number(document.querySelector('#availability')?.dataset.available) === expected,
    before,
    { timeout: WAIT_MS },
  );
  // The failed order's line is still in the cart: remove it.
  await open(shop, '/cart');
  while (await shop.getByRole('button', { name: /^Remove / }).count()) {
    const count = await shop.locator('tbody tr').count();
    await shop.getByRole('button', { name: /^Remove / }).first().click();
    await shop.waitForFunction((n) => document.querySelectorAll('tbody tr').length < n, count);
  }
  await shop.getByText('Your cart is empty').waitFor();
  await shop.locator('#cart-link', { hasText: /^Cart$/ }).waitFor();
  await shoot(shop, 'cart-empty');
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

await scenario('a shopper uses the shop with the keyboard alone: suggestions as they type, a visible focus at every stop', async () => {
  await open(shop, '/');
  await tabTo(shop, 'a.skip');
  await tabTo(shop, '#q');
  await shop.keyboard.type('summ');
  await shop.waitForFunction(() => [...document.querySelectorAll('#suggestions option')].some((option) => /summitcraft/i.test(option.value)));
  await shop.keyboard.type('itcraft');
  await shop.keyboard.press('Enter');
  await shop.waitForURL(/q=summitcraft/);
  await shop.waitForSelector('body[data-ready="true"]');
  await tabTo(shop, '.results .card button:not([disabled])');
  await shop.keyboard.press('Enter');
  await shop.locator('#cart-status .notice').waitFor();

  await open(shop, '/cart');
  await tabTo(shop, 'button[aria-label^="Remove"]');
  await shop.keyboard.press('Enter');
  await shop.getByText('Your cart is empty').waitFor();
});

await scenario('problems are put in words, not JSON', async () => {
  await open(shop, '/products/999999');
  const missing = await textOf(shop, '#main .problem');
  expect(missing.startsWith('Not found') && !missing.includes('{'), `a missing product says: ${missing}`);
  await shoot(shop, 'product-not-found');
  await open(shop, '/orders/0193a5c4-0000-7000-8000-00000000dead');
  const order = await textOf(shop, '#main .problem');
  expect(!order.includes('{') && !order.includes('"code"'), `a missing order says: ${order}`);
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
  const listed = await console_.locator('#orders tbody .status').evaluateAll((badges) => badges.map((badge) => badge.dataset.status));
  expect(listed.every((status) => status === 'CONFIRMED'), `the filter let through ${listed}`);
  await shoot(console_, 'admin-orders');
  // The console's keyboard stops show their focus too.
  await tabTo(console_, '#status-filter');
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
  await shoot(shop, 'order-delivered');

  // The notifications the order caused, with their delivery attempts.
  const kinds = await console_.locator('#notifications tbody tr td:first-child').allTextContents();
  for (const kind of ['order confirmation', 'payment receipt', 'shipping update']) {
    expect(kinds.includes(kind), `no ${kind} notification: ${kinds}`);
  }
  const attempts = await console_.locator('#notifications td[data-label="Attempts"]').allTextContents();
  expect(attempts.every((count) => /^\d+$/.test(count.trim())), `attempts are not counts: ${attempts}`);

  // What is left, refunded in full: both refunds are listed.
  await console_.fill('#refund-amount', '');
  await console_.getByRole('button', { name: 'Refund' }).click();
  await console_.locator('#payment', { hasText: /: refunded,/ }).waitFor();
  const refunds = await console_.locator('#refunds tbody tr').count();
  expect(refunds === 2, `${refunds} refunds listed, not 2`);
  expect(await console_.getByRole('button', { name: 'Refund' }).count() === 0, 'a fully refunded payment still offers a refund');
  await shoot(console_, 'admin-order-refunded');
});

await scenario('the admin cancels a confirmed order: it is refunded, and the shopper sees it cancelled', async () => {
  expect(state.delayedOrder, 'no confirmed order from the delayed card');
  await open(shop, `/orders/${state.delayedOrder}`);
  await waitForStatus(shop, 'CONFIRMED');
  await shop.evaluate(() => { window.stillTheSamePage = true; });
  await open(console_, `/admin/orders/${state.delayedOrder}`);
  await console_.getByRole('button', { name: 'Cancel and refund' }).click();
  await console_.locator('.status[data-status="CANCELLED"]').waitFor();
  // The refund is recorded after the order is final: the page follows it.
  await console_.locator('#payment', { hasText: /: refunded,/ }).waitFor();
  await console_.locator('#refunds tbody tr').first().waitFor();
  await shoot(console_, 'admin-order-cancelled');
  await waitForStatus(shop, 'CANCELLED');
  const headline = await textOf(shop, '#order-headline');
  expect(headline.includes('refunded'), `the shopper is not told of the refund: ${headline}`);
  expect(await shop.evaluate(() => window.stillTheSamePage === true), 'the shopper\'s page was reloaded');
  await shoot(shop, 'order-cancelled');
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

  // Set in place: three left is "Only 3 left" (amber in the console), none
  // is "Sold out" (red, and nothing to add), live on the product page.
  const onHand = Number(await textOf(console_, `tr[data-product-id="${product}"] td[data-field="on_hand"]`));
  const reserved = Number(await textOf(console_, `tr[data-product-id="${product}"] td[data-field="reserved"]`));
  const setTo = async (value) => {
    await console_.fill(`#set-${product}`, String(value));
    await row.getByRole('button', { name: 'Set', exact: true }).click();
    await console_.locator(`tr[data-product-id="${product}"] td[data-field="on_hand"]`, { hasText: new RegExp(`^${value}$`) }).waitFor();
  };
  await setTo(reserved + 3);
  await console_.locator(`tr.low[data-product-id="${product}"]`).waitFor();
  await shop.locator('#availability.stock-low', { hasText: 'Only 3 left' }).waitFor();
  await shoot(shop, 'product-low');
  await shoot(console_, 'admin-stock-low');
  await setTo(reserved);
  await console_.locator(`tr.out[data-product-id="${product}"]`, { hasText: 'sold out' }).waitFor();
  await shop.locator('#availability.stock-out', { hasText: 'Sold out' }).waitFor();
  expect(await shop.locator('#add-to-cart').isDisabled(), 'a sold-out product can still be added');
  await shoot(shop, 'product-sold-out');
  await setTo(onHand);
  await shop.locator('#availability.stock-ok').waitFor();
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
  await console_.locator('#events li', { hasText: `product ${product}` }).first().waitFor();
  await console_.locator('.chart p', { hasText: 'now:' }).nth(3).waitFor();
  // A reservation made now shows on the reservations chart (its peak
  // keeps it after the rate falls back to nothing).
  const reservation = await fetch(`${BASE}/api/v1/inventory/reserve`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ order_id: '0193a5c4-0000-7000-8000-00000000c4a7', items: [{ product_id: product, quantity: 1 }], ttl_seconds: 1 }),
  });
  expect(reservation.status === 201, `reserving answered ${reservation.status}`);
  await console_.locator('.chart', { hasText: 'Reservations per second' }).locator('p', { hasText: /peak of the last \d+ samples: (?!0\.00 )/ }).waitFor();
  await console_.locator('tr[data-status="DELIVERED"] td', { hasText: '1' }).waitFor();
  await shoot(console_, 'admin-live');
});

await scenario('with the demo sign-in switched off the page says so, and a real login hands a token over', async () => {
  const context = await newContext('without-demo', BASE_WITHOUT_DEMO);
  const page = await context.newPage();
  await open(page, '/sign-in');
  await page.locator('#demo-sign-in-off').waitFor();
  expect(await page.locator('#name').count() === 0, 'a sign-in form that can only be refused');
  await shoot(page, 'sign-in-demo-off');
  // What README's "Signing shoppers in" tells a deployment's login to do.
  const minted = await fetch(`${BASE_WITHOUT_DEMO}/api/v1/auth/tokens`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ user_id: 'grace@example.com', ttl_seconds: 3600 }),
  });
  expect(minted.status === 201, `minting a token answered ${minted.status}`);
  const { token, user_id: user } = await minted.json();
  await page.goto(`/sign-in?next=${encodeURIComponent('/orders')}#token=${encodeURIComponent(token)}&user=${encodeURIComponent(user)}`);
  await page.waitForURL(`${BASE_WITHOUT_DEMO}/orders`);
  await page.waitForSelector('body[data-ready="true"]');
  await page.locator('#who').getByText('grace@example.com').waitFor();
  await page.getByText('No orders yet.').waitFor();
  await context.close();
});

await scenario('every page opened afresh at phone width is usable', async () => {
  const pages = [
    [shop, '/?q=sumitcraft%20yoga'],
    [shop, '/?category=electronics&offset=12'],
    [shop, `/products/${state.firstProduct ?? 1}`],
    [shop, '/cart'],
    [shop, '/orders'],
    [shop, `/orders/${state.paidOrder}`],
    [shop, `/orders/${state.declinedOrder}`],
    [shop, '/sign-in'],
    [console_, '/admin'],
    [console_, '/admin/orders'],
    [console_, `/admin/orders/${state.paidOrder}`],
    [console_, '/admin/events'],
  ];
  for (const [page, path] of pages) {
    await page.setViewportSize(PHONE);
    await open(page, path);
    await assertNoSidewaysScroll(page);
    await assertLabelled(page);
    await assertContrast(page);
  }
  // On a phone the search filters fold away under one line.
  await open(shop, '/?q=sumitcraft%20yoga');
  expect(!(await shop.locator('details.refine').evaluate((details) => details.open)), 'the filters fill the phone screen');
  await shop.setViewportSize(DESKTOP);
  await console_.setViewportSize(DESKTOP);
});

await scenario('no page logged an error or broke its content security policy', async () => {
  expect(pageErrors.length === 0, `page errors:\n${pageErrors.join('\n')}`);
});

await scenario('nothing was fetched from outside the server (no CDN, no fonts, no network)', async () => {
  expect(outsideRequests.length === 0, `requests elsewhere:\n${outsideRequests.join('\n')}`);
});

await browser.close();
const failed = results.filter(([, error]) => error).length;
console.log(`screenshots: ${screenshots.length} in ${ARTIFACTS}`);
console.log(`${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
