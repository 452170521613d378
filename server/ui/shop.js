// The storefront: search, product pages with live stock, the cart,
// checkout with the simulated gateway's test cards, orders followed live.
// One module renders whichever page the path names; every link is a real
// link, so the browser's history, new tabs and reloads work as usual.

import {
  api, ApiProblem, availability, categoryName, el, follow, money, problemBox, reason, show, stacked,
  statusBadge, statusWords, when,
} from '/ui/api.js';

const TEST_CARDS = [
  ['tok_visa', 'Visa test card', 'the payment succeeds'],
  ['tok_chargeDeclined', 'Declined card', 'the payment fails: card declined'],
  ['tok_insufficientFunds', 'Card without funds', 'the payment fails: insufficient funds'],
  ['tok_delayed', 'Delayed card', 'the payment succeeds a little later, by the gateway\'s webhook'],
];

// The signed-in shopper: a customer token kept in this browser.
const session = {
  get token() { return localStorage.getItem('mercato.token'); },
  get user() { return localStorage.getItem('mercato.user'); },
  set(token, user) {
    localStorage.setItem('mercato.token', token);
    localStorage.setItem('mercato.user', user);
  },
  clear() {
    localStorage.removeItem('mercato.token');
    localStorage.removeItem('mercato.user');
  },
  get cartKey() { return `mercato.cart.${this.user}`; },
  get cartId() { return localStorage.getItem(this.cartKey); },
  set cartId(id) {
    if (id) localStorage.setItem(this.cartKey, id);
    else localStorage.removeItem(this.cartKey);
  },
};

function call(method, path, body) {
  return api(method, path, { body, token: session.token }).catch((error) => {
    if (error instanceof ApiProblem && error.status === 401 && session.token) {
      session.clear();
      renderWho();
    }
    throw error;
  });
}

function signInLink(next) {
  return el('a', { href: `/sign-in?next=${encodeURIComponent(next || location.pathname + location.search)}` }, 'Sign in');
}

function renderWho() {
  const who = document.getElementById('who');
  if (!who) return;
  if (session.user) {
    who.replaceChildren(
      el('span', {}, `Signed in as ${session.user} `),
      el('button', {
        type: 'button',
        class: 'secondary',
        onclick: () => { session.clear(); location.href = '/'; },
      }, 'Sign out'),
    );
  } else {
    who.replaceChildren(signInLink());
  }
}

async function renderCartCount() {
  const link = document.getElementById('cart-link');
  if (!link || !session.token || !session.cartId) return;
  try {
    const cart = await call('GET', `/api/v1/carts/${session.cartId}`);
    const count = cart.items.reduce((sum, line) => sum + line.quantity, 0);
    link.textContent = count ? `Cart (${count})` : 'Cart';
  } catch {
    link.textContent = 'Cart';
  }
}

// Suggestions as the shopper types, into the search box's datalist.
function wireSuggestions() {
  const input = document.getElementById('q');
  const list = document.getElementById('suggestions');
  const params = new URLSearchParams(location.search);
  if (location.pathname === '/') input.value = params.get('q') || '';
  let timer = null;
  let controller = null;
  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const q = input.value;
      if (!q.trim()) { list.replaceChildren(); return; }
      controller?.abort();
      controller = new AbortController();
      try {
        const answer = await api('GET', `/api/v1/search/suggest?q=${encodeURIComponent(q)}&limit=8`, { signal: controller.signal });
        // A completion replaces the last word typed.
        const head = q.replace(/\S*$/, '');
        list.replaceChildren(...answer.items.map((item) => el('option', { value: item.kind === 'product' ? item.text : head + item.text }, `${item.kind}`)));
      } catch {
        list.replaceChildren();
      }
    }, 150);
  });
}

// --- search -----------------------------------------------------------

async function searchPage() {
  const params = new URLSearchParams(location.search);
  const query = new URLSearchParams();
  for (const key of ['q', 'category', 'brand', 'min_price', 'max_price', 'in_stock', 'sort', 'offset']) {
    const value = params.get(key);
    if (value) query.set(key, value);
  }
  query.set('limit', '12');
  document.title = params.get('q') ? `${params.get('q')} – Mercato shop` : 'Mercato shop';
  let answer;
  try {
    answer = await api('GET', `/api/v1/search?${query}`);
  } catch (error) {
    show(el('h1', {}, 'Products'), problemBox(error));
    return;
  }
  const link = (changes) => {
    const next = new URLSearchParams(params);
    for (const [key, value] of Object.entries(changes)) {
      if (value === null || value === '') next.delete(key);
      else next.set(key, value);
    }
    if (!('offset' in changes)) next.delete('offset');
    return `/?${next}`;
  };
  const facetList = (name, label, words = (value) => value) => {
    const current = params.get(name);
    const values = answer.facets?.[name] || [];
    return el('section', { 'aria-labelledby': `facet-${name}` },
      el('h2', { id: `facet-${name}` }, label),
      current ? el('p', {}, el('a', { href: link({ [name]: null }) }, `Any ${label.toLowerCase()}`)) : null,
      el('ul', { 'data-facet': name }, values.map((facet) => el('li', {},
        el('a', { href: link({ [name]: current === facet.value ? null : facet.value }), 'aria-current': current === facet.value ? 'true' : null, 'data-value': facet.value },
          `${words(facet.value)} (${facet.count})`)))));
  };
  const filters = el('form', { method: 'get', action: '/', 'aria-label': 'Filters' },
    ...['q', 'category', 'brand'].filter((key) => params.get(key)).map((key) => el('input', { type: 'hidden', name: key, value: params.get(key) })),
    el('label', { for: 'min_price' }, 'Lowest price'),
    el('input', { id: 'min_price', name: 'min_price', inputmode: 'decimal', value: params.get('min_price') || '', class: 'small' }),
    el('label', { for: 'max_price' }, 'Highest price'),
    el('input', { id: 'max_price', name: 'max_price', inputmode: 'decimal', value: params.get('max_price') || '', class: 'small' }),
    el('p', {}, el('label', { class: 'inline' }, el('input', { type: 'checkbox', name: 'in_stock', value: 'true', checked: params.get('in_stock') === 'true' }), 'In stock only')),
    el('label', { for: 'sort' }, 'Sort by'),
    el('select', { id: 'sort', name: 'sort' },
      [['relevance', 'Relevance'], ['price_asc', 'Price, low to high'], ['price_desc', 'Price, high to low'], ['newest', 'Newest']]
        .map(([value, label]) => el('option', { value, selected: (params.get('sort') || 'relevance') === value }, label))),
    el('p', {}, el('button', { type: 'submit' }, 'Apply filters')));
  const offset = Number(params.get('offset') || 0);
  const hits = answer.hits.map((hit) => el('li', { class: 'card', 'data-product-id': hit.id },
    el('h3', {}, el('a', { href: `/products/${hit.id}` }, hit.name)),
    el('span', { class: 'meta' }, [hit.brand, categoryName(hit.category)].filter(Boolean).join(' · ')),
    el('span', { class: 'price' }, money(hit.price, hit.currency)),
    el('span', { class: 'stock', 'aria-live': 'polite' }),
    el('button', { type: 'button', onclick: (event) => addToCart(hit.id, 1, event.target) }, `Add to cart`)));
  const heading = params.get('q') ? `Results for “${params.get('q')}”` : 'All products';
  // The filters fill a phone's screen: there they fold away under one
  // line, open on a wider screen.
  const wide = window.matchMedia('(min-width: 701px)');
  const refine = el('details', { class: 'refine', open: wide.matches },
    el('summary', {}, 'Refine: category, brand, price, stock, sort'),
    facetList('category', 'Category', categoryName), facetList('brand', 'Brand'), filters);
  wide.addEventListener('change', (event) => { refine.open = event.matches; });
  show(
    el('h1', {}, heading),
    el('p', { id: 'result-count', 'aria-live': 'polite' }, `${answer.total} product${answer.total === 1 ? '' : 's'} found`),
    el('p', { id: 'cart-status', 'aria-live': 'polite' }),
    el('div', { class: 'layout' },
      el('aside', { class: 'facets', 'aria-label': 'Refine' }, refine),
      el('div', {},
        hits.length ? el('ul', { class: 'results' }, hits) : el('p', {}, 'No products match. Try fewer words or other filters.'),
        el('nav', { class: 'pager', 'aria-label': 'Pages' },
          offset > 0 ? el('a', { href: link({ offset: String(Math.max(0, offset - 12)) }) }, 'Previous page') : null,
          el('span', {}, answer.total ? `Showing ${offset + 1}–${offset + answer.hits.length} of ${answer.total}` : ''),
          offset + answer.hits.length < answer.total ? el('a', { href: link({ offset: String(offset + 12) }) }, 'Next page') : null)))
  );
  // Each result's availability, so a sold-out product says so before it
  // is put in a cart (the search answer carries prices, not stock).
  await Promise.all(hits.map(async (card) => {
    const line = card.querySelector('.stock');
    try {
      const stock = await api('GET', `/api/v1/inventory/${card.dataset.productId}`);
      const hit = answer.hits.find((candidate) => String(candidate.id) === card.dataset.productId);
      const [words, look] = availability(stock, hit?.low_stock_threshold);
      line.className = `stock ${look}`;
      line.textContent = words;
      card.querySelector('button').disabled = stock.available <= 0;
    } catch { /* the product page says */ }
  }));
}

// --- cart -------------------------------------------------------------

async function ensureCart() {
  if (session.cartId) {
    try {
      return await call('GET', `/api/v1/carts/${session.cartId}`);
    } catch (error) {
      if (!(error instanceof ApiProblem) || error.status !== 404) throw error;
      session.cartId = null;
    }
  }
  const cart = await call('POST', '/api/v1/carts', { user_id: session.user });
  session.cartId = cart.id;
  return cart;
}

async function addToCart(productId, quantity, button) {
  const status = document.getElementById('cart-status');
  if (!session.token) {
    location.href = `/sign-in?next=${encodeURIComponent(location.pathname + location.search)}`;
    return;
  }
  if (button) button.disabled = true;
  try {
    const cart = await ensureCart();
    const line = cart.items.find((item) => item.product_id === productId);
    const next = (line ? line.quantity : 0) + quantity;
    await call('PUT', `/api/v1/carts/${cart.id}/items/${productId}`, { quantity: next });
    if (status) status.replaceChildren(el('span', { class: 'notice' }, 'Added to your cart. ', el('a', { href: '/cart' }, 'View cart')));
    await renderCartCount();
  } catch (error) {
    if (status) status.replaceChildren(problemBox(error));
  } finally {
    if (button) button.disabled = false;
  }
}

async function productNames(ids) {
  const names = new Map();
  await Promise.all([...new Set(ids)].map(async (id) => {
    try {
      const product = await api('GET', `/api/v1/products/${id}`);
      names.set(id, product.name);
    } catch {
      names.set(id, `Product ${id} (no longer sold)`);
    }
  }));
  return names;
}

async function cartPage() {
  document.title = 'Your cart – Mercato shop';
  if (!session.token) {
    show(el('h1', {}, 'Your cart'), el('p', {}, signInLink('/cart'), ' to fill a cart.'));
    return;
  }
  let cart;
  try {
    cart = await ensureCart();
  } catch (error) {
    show(el('h1', {}, 'Your cart'), problemBox(error));
    return;
  }
  const names = await productNames(cart.items.map((line) => line.product_id));
  const status = el('div', { id: 'cart-status', 'aria-live': 'polite' });
  const update = async (productId, quantity) => {
    try {
      await call('PUT', `/api/v1/carts/${cart.id}/items/${productId}`, { quantity });
      await cartPage();
      await renderCartCount();
    } catch (error) {
      status.replaceChildren(problemBox(error));
    }
  };
  const rows = cart.items.map((line) => {
    const input = el('input', { id: `qty-${line.product_id}`, type: 'number', min: '0', max: '1000', value: line.quantity, class: 'small' });
    return el('tr', { 'data-product-id': line.product_id },
      el('td', {}, el('a', { href: `/products/${line.product_id}` }, names.get(line.product_id))),
      el('td', {}, money(line.unit_price, cart.currency)),
      el('td', {},
        el('label', { for: `qty-${line.product_id}`, class: 'visually-hidden' }, `Quantity of ${names.get(line.product_id)}`),
        el('form', { class: 'row', onsubmit: (event) => { event.preventDefault(); update(line.product_id, Number(input.value)); } },
          input, el('button', { type: 'submit', class: 'secondary' }, 'Update'))),
      el('td', {}, money(line.line_total, cart.currency)),
      el('td', {}, el('button', {
        type: 'button', class: 'secondary', 'aria-label': `Remove ${names.get(line.product_id)}`,
        onclick: async () => {
          try {
            await call('DELETE', `/api/v1/carts/${cart.id}/items/${line.product_id}`);
            await cartPage();
            await renderCartCount();
          } catch (error) { status.replaceChildren(problemBox(error)); }
        },
      }, 'Remove')));
  });
  show(
    el('h1', {}, 'Your cart'),
    status,
    cart.items.length
      ? el('div', {},
        el('div', { class: 'table-wrap' }, stacked(el('table', {},
          el('thead', {}, el('tr', {}, ['Product', 'Price', 'Quantity', 'Total', ''].map((h) => el('th', { scope: 'col' }, h)))),
          el('tbody', {}, rows)))),
        el('p', { class: 'price', id: 'subtotal' }, `Subtotal: ${money(cart.subtotal, cart.currency)}`),
        el('p', {}, el('a', { href: '/checkout', id: 'to-checkout', class: 'button' }, 'Go to checkout')))
      : el('p', {}, 'Your cart is empty. ', el('a', { href: '/' }, 'Find something')),
  );
}

// --- checkout ---------------------------------------------------------

async function checkoutPage() {
  document.title = 'Checkout – Mercato shop';
  if (!session.token) {
    show(el('h1', {}, 'Checkout'), el('p', {}, signInLink('/checkout'), ' to check out.'));
    return;
  }
  let cart;
  try {
    cart = await ensureCart();
  } catch (error) {
    show(el('h1', {}, 'Checkout'), problemBox(error));
    return;
  }
  if (!cart.items.length) {
    show(el('h1', {}, 'Checkout'), el('p', {}, 'Your cart is empty. ', el('a', { href: '/' }, 'Find something')));
    return;
  }
  const status = el('div', { id: 'checkout-status', 'aria-live': 'assertive' });
  const email = el('input', { id: 'email', name: 'email', type: 'email', required: true, autocomplete: 'email', value: session.user.includes('@') ? session.user : '' });
  const address = el('textarea', { id: 'address', name: 'address', required: true, rows: '3', autocomplete: 'street-address' });
  const cards = el('fieldset', {},
    el('legend', {}, 'Test card (simulated gateway, nothing is charged)'),
    TEST_CARDS.map(([token, label, outcome], index) => el('p', {},
      el('label', { class: 'inline' },
        el('input', { type: 'radio', name: 'card', value: token, checked: index === 0 }),
        `${label} (${token}): ${outcome}`))));
  const submit = el('button', { type: 'submit', id: 'place-order' }, `Pay ${money(cart.subtotal, cart.currency)} and place the order`);
  const form = el('form', {
    onsubmit: async (event) => {
      event.preventDefault();
      submit.disabled = true;
      status.replaceChildren(el('p', {}, 'Placing your order…'));
      const token = form.querySelector('input[name=card]:checked').value;
      try {
        const order = await call('POST', '/api/v1/orders', {
          user_id: session.user,
          cart_id: cart.id,
          payment: { method: 'card', token },
          email: email.value,
          shipping_address: address.value,
        });
        location.href = `/orders/${order.id}`;
      } catch (error) {
        status.replaceChildren(problemBox(error));
        submit.disabled = false;
      }
    },
  },
  el('label', { for: 'email' }, 'Email for the confirmation'), email,
  el('label', { for: 'address' }, 'Shipping address'), address,
  cards,
  submit);
  show(
    el('h1', {}, 'Checkout'),
    el('p', {}, `${cart.items.reduce((sum, line) => sum + line.quantity, 0)} item(s), subtotal ${money(cart.subtotal, cart.currency)}. `, el('a', { href: '/cart' }, 'Change the cart')),
    status,
    form,
  );
}

// --- orders -----------------------------------------------------------

// The milestones and the saga step that completes each.
const PROGRESS = [
  ['RESERVE_INVENTORY', 'Stock reserved'],
  ['PROCESS_PAYMENT', 'Paid and confirmed'],
  ['SHIP_ORDER', 'Shipped'],
  ['DELIVER_ORDER', 'Delivered'],
];

// The milestones reached, from the saga log; an order that failed or was
// cancelled shows how far it got and then why it stopped, not the
// milestones it will never reach.
function progress(order, saga) {
  const done = new Set(saga.filter((entry) => entry.status === 'COMPLETED').map((entry) => entry.step_name));
  const failed = order.status === 'PAYMENT_FAILED' || order.status === 'CANCELLED';
  const items = PROGRESS
    .filter(([step]) => !failed || done.has(step))
    .map(([step, words]) => el('li', { class: done.has(step) ? 'done' : '' }, words));
  if (failed) items.push(el('li', { class: 'failed' }, statusWords(order.status)[0]));
  return el('ol', { class: 'steps', 'aria-label': 'Progress' }, items);
}

function headline(order, saga) {
  switch (order.status) {
    case 'PENDING': return 'We are reserving your items.';
    case 'AWAITING_PAYMENT': return 'Your items are reserved; waiting for the payment to go through.';
    case 'CONFIRMED': return 'Thank you! Your order is confirmed.';
    case 'SHIPPED': return `Your order is on its way${order.carrier ? ` with ${order.carrier}` : ''}${order.tracking_number ? ` (tracking ${order.tracking_number})` : ''}.`;
    case 'DELIVERED': return 'Your order was delivered.';
    case 'PAYMENT_FAILED': return `The payment failed: ${reason(order.failure_reason)}. Nothing was charged and the items were put back on the shelf.`;
    case 'CANCELLED': {
      const why = order.failure_reason && order.failure_reason !== 'cancelled' ? `: ${reason(order.failure_reason)}` : '';
      // A cancelled order that was paid is refunded (the saga records the
      // refund before the gateway is called, and retries it until done).
      const refund = saga.filter((entry) => entry.step_name === 'REFUND_PAYMENT').map((entry) => entry.status);
      const refundWords = refund.includes('COMPLETED') ? ' Your payment was refunded to your card.'
        : refund.length ? ' Your payment will be refunded to your card.' : ' Nothing was charged.';
      return `The order was cancelled${why}.${refundWords}`;
    }
    default: return order.status;
  }
}

// A saga step in words for the shopper; the console shows the raw log
// (ids, idempotency keys) to the operator.
function sagaWords(entry, currency) {
  const failed = entry.status === 'FAILED';
  const started = entry.status === 'STARTED';
  const amount = (entry.details.match(/^refunded (\d+(?:\.\d+)?)/) || [])[1];
  switch (entry.step_name) {
    case 'RESERVE_INVENTORY': return started ? 'Reserving your items' : failed ? 'Not enough stock for this order' : 'Your items are reserved for you';
    case 'PROCESS_PAYMENT': return started
      ? (entry.details.includes('follows by webhook') ? 'The card issuer is confirming the payment' : 'Payment sent to the card')
      : failed ? `Payment failed: ${entry.details.replace(/^[a-z_]+$/, reason)}` : 'Payment received';
    case 'COMMIT_INVENTORY': return 'Your items are set aside for shipping';
    case 'EMPTY_CART': return 'Your cart was emptied';
    case 'RELEASE_INVENTORY': return 'The items were put back on the shelf';
    case 'RESTOCK_INVENTORY': return 'The items went back into stock';
    case 'VOID_PAYMENT': return started ? 'Cancelling the payment' : 'The payment was cancelled; nothing was charged';
    case 'REFUND_PAYMENT': return started ? 'Refund on its way' : failed ? 'The refund failed; the shop will retry' : `Refunded${amount ? ` ${money(amount, currency)}` : ''}`;
    case 'SHIP_ORDER': return `Shipped${entry.details ? ` (${entry.details})` : ''}`;
    case 'DELIVER_ORDER': return 'Delivered';
    default: return `${entry.status.toLowerCase()}${entry.details ? `: ${entry.details}` : ''}`;
  }
}

async function orderPage(orderId) {
  document.title = 'Your order – Mercato shop';
  if (!session.token) {
    show(el('h1', {}, 'Your order'), el('p', {}, signInLink(), ' to see this order.'));
    return;
  }
  const status = el('div', { id: 'order-live', 'aria-live': 'polite' });
  const actions = el('div', { id: 'order-actions', 'aria-live': 'polite' });
  const body = el('div', {});
  let names = new Map();
  let current = null;
  const render = async ({ order, saga }) => {
    current = order;
    if (names.size === 0) names = await productNames(order.items.map((line) => line.product_id));
    status.replaceChildren(
      el('p', {}, 'Status: ', statusBadge(order.status)),
      el('p', { id: 'order-headline' }, headline(order, saga)),
      progress(order, saga));
    const cancellable = ['PENDING', 'AWAITING_PAYMENT', 'CONFIRMED'].includes(order.status);
    // A failed payment leaves the items in the cart: another card may do.
    const retry = order.status === 'PAYMENT_FAILED'
      ? [el('p', {}, el('a', { href: '/checkout', class: 'button', id: 'try-again' }, 'Try again with another card'))]
      : [];
    actions.replaceChildren(...retry, ...(!cancellable ? [] : [
      el('button', {
        type: 'button', class: 'danger', id: 'cancel-order',
        onclick: async (event) => {
          if (!confirm('Cancel this order?')) return;
          event.target.disabled = true;
          try {
            const cancelled = await call('POST', `/api/v1/orders/${order.id}/cancel`);
            const log = await call('GET', `/api/v1/orders/${order.id}/saga`);
            await render({ order: cancelled, saga: log.items });
          } catch (error) {
            actions.append(problemBox(error));
            event.target.disabled = false;
          }
        },
      }, order.status === 'CONFIRMED' ? 'Cancel and refund' : 'Cancel order')]));
    body.replaceChildren(
      el('h2', {}, 'Items'),
      el('div', { class: 'table-wrap' }, stacked(el('table', {},
        el('thead', {}, el('tr', {}, ['Product', 'Quantity', 'Price'].map((h) => el('th', { scope: 'col' }, h)))),
        el('tbody', {}, order.items.map((line) => el('tr', {},
          el('td', {}, el('a', { href: `/products/${line.product_id}` }, names.get(line.product_id))),
          el('td', {}, line.quantity),
          el('td', {}, money(line.unit_price, order.currency)))))))),
      el('p', { class: 'price' }, `Total: ${money(order.total_amount, order.currency)}`),
      order.shipping_address ? el('p', {}, `Ships to: ${order.shipping_address}`) : null,
      el('p', { class: 'meta' }, `Order ${order.id}, placed ${when(order.created_at)}`),
      el('h2', {}, 'What happened'),
      el('div', { class: 'table-wrap' }, stacked(el('table', { id: 'saga' },
        el('thead', {}, el('tr', {}, ['Step', 'Outcome', 'When'].map((h) => el('th', { scope: 'col' }, h)))),
        el('tbody', {}, saga.map((entry) => el('tr', { 'data-step': entry.step_name, 'data-outcome': entry.status },
          el('td', {}, `${entry.step_name.replaceAll('_', ' ').toLowerCase()}${entry.is_compensating ? ' (undo)' : ''}`),
          el('td', {}, sagaWords(entry, order.currency)),
          el('td', {}, when(entry.created_at)))))))));
  };
  show(el('h1', {}, 'Your order'), status, actions, body);
  try {
    const [order, saga] = await Promise.all([
      call('GET', `/api/v1/orders/${orderId}`),
      call('GET', `/api/v1/orders/${orderId}/saga`),
    ]);
    await render({ order, saga: saga.items });
  } catch (error) {
    show(el('h1', {}, 'Your order'), problemBox(error));
    return;
  }
  const final = () => current && ['DELIVERED', 'CANCELLED', 'PAYMENT_FAILED'].includes(current.status);
  if (final()) return;
  follow(`/api/v1/orders/${orderId}/stream`, {
    token: session.token,
    onEvent: (name, data) => { if (name === 'order') render(data); },
    reconnect: () => !final(),
  });
}

async function ordersPage() {
  document.title = 'Your orders – Mercato shop';
  if (!session.token) {
    show(el('h1', {}, 'Your orders'), el('p', {}, signInLink('/orders'), ' to see your orders.'));
    return;
  }
  const params = new URLSearchParams(location.search);
  const cursor = params.get('cursor');
  try {
    const page = await call('GET', `/api/v1/orders/user/${encodeURIComponent(session.user)}?limit=20${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    // An order is named by what is in it, not by its id.
    const names = await productNames(page.items.flatMap((order) => order.items.map((line) => line.product_id)));
    const summary = (order) => {
      const count = order.items.reduce((sum, line) => sum + line.quantity, 0);
      const first = names.get(order.items[0]?.product_id) || 'Order';
      const others = order.items.length - 1;
      return `${first}${others > 0 ? ` and ${others} more` : ''} (${count} item${count === 1 ? '' : 's'})`;
    };
    show(
      el('h1', {}, 'Your orders'),
      page.items.length
        ? el('div', { class: 'table-wrap' }, stacked(el('table', { id: 'order-history' },
          el('thead', {}, el('tr', {}, ['Order', 'Placed', 'Status', 'Total'].map((h) => el('th', { scope: 'col' }, h)))),
          el('tbody', {}, page.items.map((order) => el('tr', { 'data-order-id': order.id },
            el('td', {}, el('a', { href: `/orders/${order.id}` }, summary(order))),
            el('td', {}, when(order.created_at)),
            el('td', {}, statusBadge(order.status)),
            el('td', {}, money(order.total_amount, order.currency))))))))
        : el('p', {}, 'No orders yet.'),
      page.next_cursor ? el('p', {}, el('a', { href: `/orders?cursor=${encodeURIComponent(page.next_cursor)}` }, 'Older orders')) : null,
    );
  } catch (error) {
    show(el('h1', {}, 'Your orders'), problemBox(error));
  }
}

// --- product ----------------------------------------------------------

async function productPage(productId) {
  let product;
  try {
    product = await api('GET', `/api/v1/products/${productId}`);
  } catch (error) {
    show(el('h1', {}, 'Product'), problemBox(error));
    return;
  }
  document.title = `${product.name} – Mercato shop`;
  const stockLine = el('p', { id: 'availability', 'aria-live': 'polite' }, 'Checking stock…');
  const quantity = el('input', { id: 'quantity', type: 'number', min: '1', max: '100', value: '1', class: 'small' });
  const add = el('button', { type: 'submit', id: 'add-to-cart' }, 'Add to cart');
  const setStock = (stock) => {
    const [words, look] = availability(stock, product.low_stock_threshold);
    stockLine.className = look;
    stockLine.dataset.available = String(stock.available);
    stockLine.textContent = words;
    add.disabled = stock.available <= 0;
  };
  show(
    el('p', {}, el('a', { href: product.category ? `/?category=${encodeURIComponent(product.category)}` : '/' }, product.category ? categoryName(product.category) : 'All products')),
    el('h1', {}, product.name),
    el('p', { class: 'meta' }, [product.brand, product.sku].filter(Boolean).join(' · ')),
    el('p', { class: 'price' }, money(product.price, product.currency)),
    stockLine,
    el('p', {}, product.description || ''),
    Object.keys(product.attributes || {}).length
      ? el('dl', { class: 'attributes' }, Object.entries(product.attributes).flatMap(([key, value]) => [el('dt', {}, key), el('dd', {}, value)]))
      : null,
    el('form', { class: 'row', onsubmit: (event) => { event.preventDefault(); addToCart(product.id, Number(quantity.value), add); } },
      el('label', { for: 'quantity' }, 'Quantity'), quantity, add),
    el('p', { id: 'cart-status', 'aria-live': 'polite' }),
  );
  // The figure now, whether or not the stream below opens.
  api('GET', `/api/v1/inventory/${product.id}`).then(setStock, () => {});
  // Public stream. EventSource reconnects by itself after a dropped
  // connection, but gives up on a refusal (a busy server's 503): then it
  // is opened again a little later.
  let gone = false;
  const listen = (delay) => {
    const source = new EventSource(`/api/v1/inventory/${product.id}/stream`);
    source.addEventListener('stock', (event) => setStock(JSON.parse(event.data)));
    source.addEventListener('gone', () => {
      gone = true;
      source.close();
      stockLine.className = 'stock-out';
      stockLine.textContent = 'This product is no longer sold.';
      add.disabled = true;
    });
    source.addEventListener('error', () => {
      if (gone || source.readyState !== EventSource.CLOSED) return;
      setTimeout(() => listen(Math.min(delay * 2, 30000)), delay);
    });
  };
  listen(1000);
}

// --- sign-in ----------------------------------------------------------

function signInPage() {
  document.title = 'Sign in – Mercato shop';
  const params = new URLSearchParams(location.search);
  const next = params.get('next') || '/';
  const safeNext = next.startsWith('/') && !next.startsWith('//') ? next : '/';
  // A deployment's own login hands over a token in the fragment (never
  // sent to any server): /sign-in#token=...&user=...
  const handed = new URLSearchParams(location.hash.slice(1));
  if (handed.get('token') && handed.get('user')) {
    session.set(handed.get('token'), handed.get('user'));
    history.replaceState(null, '', '/sign-in');
    location.href = safeNext;
    return;
  }
  // The server renders whether its operator switched the demo sign-in off.
  if (document.body.dataset.demoSignIn === 'off') {
    show(
      el('h1', {}, 'Sign in'),
      el('p', { id: 'demo-sign-in-off' }, 'The demo sign-in is switched off on this shop: it signs people in through its own login. Sign in there, and it brings you back here signed in.'),
      el('p', {}, el('a', { href: '/' }, 'Back to the shop')),
    );
    return;
  }
  const status = el('div', { id: 'sign-in-status', 'aria-live': 'assertive' });
  const name = el('input', { id: 'name', name: 'name', required: true, autocomplete: 'email', maxlength: '255' });
  show(
    el('h1', {}, 'Sign in'),
    el('p', { class: 'notice' }, 'This is a demo sign-in: type any name or email address, no password. Anyone can sign in as anyone, so use it only to try the shop.'),
    status,
    el('form', {
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          const minted = await api('POST', '/api/v1/auth/demo-sign-in', { body: { name: name.value } });
          session.set(minted.token, minted.user_id);
          location.href = safeNext;
        } catch (error) {
          status.replaceChildren(problemBox(error));
        }
      },
    },
    el('label', { for: 'name' }, 'Your name or email'), name,
    el('p', {}, el('button', { type: 'submit' }, 'Sign in'))),
  );
}

// --- the router -------------------------------------------------------

async function main() {
  renderWho();
  wireSuggestions();
  renderCartCount();
  const path = location.pathname;
  let match;
  if (path === '/') await searchPage();
  else if ((match = path.match(/^\/products\/(\d+)$/))) await productPage(Number(match[1]));
  else if (path === '/cart') await cartPage();
  else if (path === '/checkout') await checkoutPage();
  else if (path === '/orders') await ordersPage();
  else if ((match = path.match(/^\/orders\/([0-9a-fA-F-]{36})$/))) await orderPage(match[1]);
  else if (path === '/sign-in') signInPage();
  else show(el('h1', {}, 'Not found'), el('p', {}, el('a', { href: '/' }, 'Back to the shop')));
  document.body.dataset.ready = 'true';
}

main();
