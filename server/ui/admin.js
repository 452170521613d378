// The operator's console: stock (set and adjust in place, reservations
// with their deadlines), orders (filter, ship, deliver, cancel, refund,
// saga log, notifications), and the live event stream beside charts of
// the server's own metrics. Every call carries the admin token, kept for
// this tab only (sessionStorage).

import {
  api, ApiProblem, el, fill, follow, money, problemBox, reason, show, stacked, statusBadge, when,
} from '/ui/api.js';

const STATUSES = ['PENDING', 'AWAITING_PAYMENT', 'CONFIRMED', 'SHIPPED', 'DELIVERED', 'CANCELLED', 'PAYMENT_FAILED'];

const admin = {
  get token() { return sessionStorage.getItem('mercato.admin'); },
  set token(value) {
    if (value) sessionStorage.setItem('mercato.admin', value);
    else sessionStorage.removeItem('mercato.admin');
  },
};

function call(method, path, body) {
  return api(method, path, { body, token: admin.token }).catch((error) => {
    if (error instanceof ApiProblem && (error.status === 401 || error.status === 403)) {
      admin.token = null;
      signInPage('The admin token was refused; sign in again.');
    }
    throw error;
  });
}

function signInPage(message) {
  document.title = 'Sign in – Mercato console';
  const status = el('div', { id: 'admin-status', 'aria-live': 'assertive' }, message ? problemBox(message) : null);
  const token = el('input', { id: 'admin-token', type: 'password', required: true, autocomplete: 'current-password' });
  show(
    el('h1', {}, 'Operator sign-in'),
    el('p', {}, 'Paste the admin token (MERCATO_ADMIN_TOKEN, or the admin_token file in the data directory, as the server printed at start).'),
    status,
    el('form', {
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          await api('GET', '/api/v1/events?limit=1', { token: token.value });
          admin.token = token.value;
          route();
        } catch (error) {
          status.replaceChildren(problemBox(error.status === 403 ? new Error('That is a customer token, not the admin token.') : error));
        }
      },
    },
    el('label', { for: 'admin-token' }, 'Admin token'), token,
    el('p', {}, el('button', { type: 'submit' }, 'Sign in'))),
  );
}

function renderWho() {
  const who = document.getElementById('who');
  who.replaceChildren(admin.token
    ? el('button', { type: 'button', class: 'secondary', onclick: () => { admin.token = null; location.href = '/admin'; } }, 'Sign out')
    : '');
}

// --- stock ------------------------------------------------------------

function stockClass(stock, threshold) {
  if (stock.available <= 0) return ['out', 'sold out'];
  if (stock.available <= threshold) return ['low', 'low'];
  return ['', ''];
}

async function stockPage() {
  document.title = 'Stock – Mercato console';
  const params = new URLSearchParams(location.search);
  const cursor = params.get('cursor');
  const q = params.get('q') || '';
  const status = el('div', { id: 'stock-status', 'aria-live': 'polite' });
  const finder = el('form', { method: 'get', action: '/admin', class: 'row', role: 'search' },
    el('label', { for: 'find' }, 'Find products'),
    el('input', { id: 'find', name: 'q', type: 'search', value: q, placeholder: 'name, brand, SKU or id' }),
    el('button', { type: 'submit' }, 'Find'),
    q ? el('a', { href: '/admin' }, 'All products') : null);
  let page;
  try {
    if (/^\d+$/.test(q.trim())) {
      const product = await call('GET', `/api/v1/products/${q.trim()}`);
      page = { items: [product], next_cursor: null };
    } else if (q) {
      const found = await call('GET', `/api/v1/search?q=${encodeURIComponent(q)}&limit=50`);
      page = { items: found.hits, next_cursor: null };
    } else {
      page = await call('GET', `/api/v1/products?limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    }
  } catch (error) {
    show(el('h1', {}, 'Stock'), finder, problemBox(error));
    return;
  }
  const rows = new Map();
  const tbody = el('tbody', {});
  const renderRow = (product, stock) => {
    const [look, label] = stockClass(stock, product.low_stock_threshold);
    const setInput = el('input', { type: 'number', min: '0', value: stock.on_hand, class: 'small', id: `set-${product.id}`, 'aria-label': `New on hand for ${product.name}` });
    const deltaInput = el('input', { type: 'number', value: '', placeholder: '+/-', class: 'small', id: `delta-${product.id}`, 'aria-label': `Adjust on hand of ${product.name} by` });
    const reservations = el('td', { colspan: '6' });
    const reservationRow = el('tr', { hidden: true }, reservations);
    const write = async (method, path, body) => {
      try {
        const next = await call(method, path, body);
        status.replaceChildren(el('p', { class: 'notice' }, `${product.name}: on hand ${next.on_hand}, available ${next.available}.`));
        update(product.id, next);
      } catch (error) {
        status.replaceChildren(problemBox(error));
      }
    };
    const row = el('tr', { class: look, 'data-product-id': product.id },
      el('td', { 'data-label': 'Product' }, el('a', { href: `/products/${product.id}` }, `${product.id}`), ' ', product.name),
      el('td', { 'data-field': 'on_hand', 'data-label': 'On hand' }, stock.on_hand),
      el('td', { 'data-field': 'reserved', 'data-label': 'Reserved' }, stock.reserved),
      el('td', { 'data-field': 'available', 'data-label': 'Available' }, `${stock.available}${label ? ` (${label})` : ''}`),
      el('td', { class: 'change' },
        el('form', { class: 'row', onsubmit: (event) => { event.preventDefault(); write('PUT', `/api/v1/inventory/${product.id}`, { on_hand: Number(setInput.value) }); } },
          setInput, el('button', { type: 'submit', class: 'secondary' }, 'Set')),
        el('form', { class: 'row', onsubmit: (event) => { event.preventDefault(); write('POST', `/api/v1/inventory/${product.id}/adjust`, { delta: Number(deltaInput.value) }); deltaInput.value = ''; } },
          deltaInput, el('button', { type: 'submit', class: 'secondary' }, 'Adjust'))),
      el('td', {}, el('button', {
        type: 'button', class: 'secondary', 'aria-expanded': 'false',
        onclick: async (event) => {
          const open = reservationRow.hidden;
          reservationRow.hidden = !open;
          event.target.setAttribute('aria-expanded', String(open));
          if (open) await showReservations(product.id, reservations);
        },
      }, 'Reservations')));
    const old = rows.get(product.id);
    if (old) {
      old.row.replaceWith(row);
      old.reservationRow.replaceWith(reservationRow);
      // An open reservations panel stays open, with fresh figures.
      if (!old.reservationRow.hidden) {
        reservationRow.hidden = false;
        row.querySelector('button[aria-expanded]').setAttribute('aria-expanded', 'true');
        showReservations(product.id, reservations);
      }
    } else {
      tbody.append(row, reservationRow);
    }
    rows.set(product.id, { row, reservationRow, product });
  };
  const update = (productId, stock) => {
    const entry = rows.get(productId);
    if (entry) renderRow(entry.product, stock);
  };
  const stocks = await Promise.all(page.items.map((product) => call('GET', `/api/v1/inventory/${product.id}`).catch(() => null)));
  page.items.forEach((product, index) => { if (stocks[index]) renderRow(product, stocks[index]); });
  show(
    el('h1', {}, 'Stock'),
    el('p', {}, 'Rows in amber are at or below their low-stock threshold; rows in red are sold out. Figures update live.'),
    finder,
    status,
    el('div', { class: 'table-wrap' }, el('table', { id: 'stock-table', class: 'stack' },
      el('thead', {}, el('tr', {}, ['Product', 'On hand', 'Reserved', 'Available', 'Change', ''].map((h) => el('th', { scope: 'col' }, h)))),
      tbody)),
    page.next_cursor ? el('p', {}, el('a', { href: `/admin?cursor=${encodeURIComponent(page.next_cursor)}` }, 'Next products')) : null,
  );
  // Live: any event about a product on this page refreshes its row.
  follow('/api/v1/events/stream', {
    token: admin.token,
    onEvent: async (name, data) => {
      const ids = new Set();
      if (data?.payload?.product_id) ids.add(data.payload.product_id);
      for (const item of data?.payload?.items || []) ids.add(item.product_id);
      for (const id of ids) {
        if (!rows.has(id)) continue;
        try { update(id, await call('GET', `/api/v1/inventory/${id}`)); } catch { /* shown on the next change */ }
      }
    },
  });
}

let countdownTimer = null;

async function showReservations(productId, cell) {
  try {
    const list = await call('GET', `/api/v1/inventory/reservations?product_id=${productId}&limit=50`);
    if (!list.items.length) {
      cell.replaceChildren(el('p', {}, 'No active reservations.'));
      return;
    }
    const deadlines = [];
    cell.replaceChildren(stacked(el('table', {},
      el('caption', {}, 'Active reservations'),
      el('thead', {}, el('tr', {}, ['Order', 'Quantity', 'Expires in'].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, list.items.map((reservation) => {
        const left = el('td', { 'data-expires-at': reservation.expires_at });
        deadlines.push(left);
        const line = reservation.items.find((item) => item.product_id === productId);
        return el('tr', {},
          el('td', {}, el('a', { href: `/admin/orders/${reservation.order_id}` }, reservation.order_id.slice(-12))),
          el('td', {}, line ? line.quantity : ''),
          left);
      })))));
    const tick = () => {
      for (const cellLeft of document.querySelectorAll('td[data-expires-at]')) {
        const seconds = Math.max(0, Math.round((new Date(cellLeft.dataset.expiresAt) - Date.now()) / 1000));
        cellLeft.textContent = seconds > 0 ? `${Math.floor(seconds / 60)} min ${seconds % 60} s` : 'expiring';
      }
    };
    tick();
    clearInterval(countdownTimer);
    countdownTimer = setInterval(tick, 1000);
  } catch (error) {
    cell.replaceChildren(problemBox(error));
  }
}

// --- orders -----------------------------------------------------------

async function ordersPage() {
  document.title = 'Orders – Mercato console';
  const params = new URLSearchParams(location.search);
  const query = new URLSearchParams({ limit: '50' });
  if (params.get('status')) query.set('status', params.get('status'));
  if (params.get('cursor')) query.set('cursor', params.get('cursor'));
  const filter = el('form', { method: 'get', action: '/admin/orders', class: 'row' },
    el('label', { for: 'status-filter' }, 'Status'),
    el('select', { id: 'status-filter', name: 'status' },
      el('option', { value: '' }, 'Any'),
      STATUSES.map((status) => el('option', { value: status, selected: params.get('status') === status }, status.replaceAll('_', ' ').toLowerCase()))),
    el('button', { type: 'submit' }, 'Filter'));
  try {
    const page = await call('GET', `/api/v1/orders?${query}`);
    const next = new URLSearchParams(params);
    if (page.next_cursor) next.set('cursor', page.next_cursor);
    show(
      el('h1', {}, 'Orders'),
      filter,
      page.items.length
        ? el('div', { class: 'table-wrap' }, stacked(el('table', { id: 'orders' },
          el('thead', {}, el('tr', {}, ['Order', 'Customer', 'Status', 'Total', 'Placed'].map((h) => el('th', { scope: 'col' }, h)))),
          el('tbody', {}, page.items.map((order) => el('tr', { 'data-order-id': order.id },
            el('td', {}, el('a', { href: `/admin/orders/${order.id}` }, order.id.slice(-12))),
            el('td', {}, order.user_id),
            el('td', {}, statusBadge(order.status)),
            el('td', {}, money(order.total_amount, order.currency)),
            el('td', {}, when(order.created_at))))))))
        : el('p', {}, 'No orders here.'),
      page.next_cursor ? el('p', {}, el('a', { href: `/admin/orders?${next}` }, 'Older orders')) : null,
    );
  } catch (error) {
    show(el('h1', {}, 'Orders'), filter, problemBox(error));
  }
}

async function orderPage(orderId) {
  document.title = 'Order – Mercato console';
  const status = el('div', { id: 'order-status', 'aria-live': 'polite' });
  const holder = el('div', {});
  const render = async () => {
    let order;
    let saga;
    try {
      [order, saga] = await Promise.all([
        call('GET', `/api/v1/orders/${orderId}`),
        call('GET', `/api/v1/orders/${orderId}/saga`),
      ]);
    } catch (error) {
      holder.replaceChildren(problemBox(error));
      return null;
    }
    const names = new Map(await Promise.all(order.items.map(async (line) => {
      const product = await call('GET', `/api/v1/products/${line.product_id}`).catch(() => null);
      return [line.product_id, product ? product.name : '(archived)'];
    })));
    const payment = order.payment_id ? await call('GET', `/api/v1/payments/${order.payment_id}`).catch(() => null) : null;
    const notifications = await call('GET', `/api/v1/notifications?order_id=${orderId}`).catch(() => ({ items: [] }));
    const act = async (method, path, body, done) => {
      try {
        await call(method, path, body);
        // Done: what was typed for it is used up.
        for (const input of holder.querySelectorAll('input')) input.value = '';
        status.replaceChildren(el('p', { class: 'notice' }, done));
        await refresh();
      } catch (error) {
        status.replaceChildren(problemBox(error));
      }
    };
    // Each refund is a completed REFUND_PAYMENT step of the saga log
    // ("refunded 1.00, 1.00 in all"), the admin's and a cancellation's alike.
    const refunds = saga.items
      .filter((entry) => entry.step_name === 'REFUND_PAYMENT' && entry.status === 'COMPLETED')
      .map((entry) => ({ ...entry, amount: (entry.details.match(/^refunded (\d+(?:\.\d+)?)/) || [])[1] }));
    // A fresh render (an event about the order) keeps what the operator
    // is typing, and where.
    const typed = (id) => holder.querySelector(`#${id}`)?.value || '';
    const focused = holder.contains(document.activeElement) ? document.activeElement.id : null;
    const carrier = el('input', { id: 'carrier', value: typed('carrier') });
    const tracking = el('input', { id: 'tracking', value: typed('tracking') });
    const refundAmount = el('input', { id: 'refund-amount', inputmode: 'decimal', placeholder: 'all', class: 'small', value: typed('refund-amount') });
    fill(holder,
      el('p', {}, 'Status: ', statusBadge(order.status), order.failure_reason ? ` – ${reason(order.failure_reason)}` : ''),
      el('p', {}, `Customer ${order.user_id}${order.email && order.email !== order.user_id ? ` <${order.email}>` : ''}; placed ${when(order.created_at)}`),
      order.shipping_address ? el('p', {}, `Ships to: ${order.shipping_address}`) : null,
      order.carrier || order.tracking_number ? el('p', {}, `Carrier ${order.carrier || '–'}, tracking ${order.tracking_number || '–'}`) : null,
      el('h2', {}, 'Lines'),
      el('div', { class: 'table-wrap' }, stacked(el('table', {},
        el('thead', {}, el('tr', {}, ['Product', 'Quantity', 'Unit price'].map((h) => el('th', { scope: 'col' }, h)))),
        el('tbody', {}, order.items.map((line) => el('tr', {},
          el('td', {}, `${line.product_id} ${names.get(line.product_id)}`), el('td', {}, line.quantity), el('td', {}, money(line.unit_price, order.currency)))))))),
      el('p', { class: 'price' }, `Total ${money(order.total_amount, order.currency)}`),
      el('h2', {}, 'Actions'),
      order.status === 'CONFIRMED'
        ? el('form', { class: 'row', id: 'ship-form', onsubmit: (event) => { event.preventDefault(); act('POST', `/api/v1/orders/${orderId}/ship`, { carrier: carrier.value || undefined, tracking_number: tracking.value || undefined }, 'Shipped.'); } },
          el('div', {}, el('label', { for: 'carrier' }, 'Carrier'), carrier),
          el('div', {}, el('label', { for: 'tracking' }, 'Tracking number'), tracking),
          el('button', { type: 'submit', id: 'ship' }, 'Ship'))
        : null,
      order.status === 'SHIPPED'
        ? el('p', {}, el('button', { type: 'button', id: 'deliver', onclick: () => act('POST', `/api/v1/orders/${orderId}/deliver`, undefined, 'Delivered.') }, 'Mark delivered'))
        : null,
      ['PENDING', 'AWAITING_PAYMENT', 'CONFIRMED'].includes(order.status)
        ? el('p', {}, el('button', {
          type: 'button', class: 'danger', id: 'cancel',
          onclick: () => {
            if (!confirm(order.status === 'CONFIRMED' ? 'Cancel this order and refund its payment?' : 'Cancel this order?')) return;
            act('POST', `/api/v1/orders/${orderId}/cancel`, undefined, 'Cancelled.');
          },
        }, order.status === 'CONFIRMED' ? 'Cancel and refund' : 'Cancel order'))
        : null,
      el('h2', {}, 'Payment'),
      payment
        ? el('div', {},
          el('p', { id: 'payment' }, `Payment ${payment.id.slice(-12)}: ${payment.status.replaceAll('_', ' ')}, ${money(payment.amount, payment.currency)}, refunded ${money(payment.refunded_amount, payment.currency)}${payment.failure_reason ? ` (${reason(payment.failure_reason)})` : ''}`),
          refunds.length
            ? el('div', { class: 'table-wrap' }, stacked(el('table', { id: 'refunds' },
              el('caption', {}, 'Refunds'),
              el('thead', {}, el('tr', {}, ['When', 'Refund', 'Details'].map((h) => el('th', { scope: 'col' }, h)))),
              el('tbody', {}, refunds.map((entry) => el('tr', {},
                el('td', {}, when(entry.created_at)),
                el('td', {}, entry.amount ? money(entry.amount, payment.currency) : ''),
                el('td', {}, entry.details)))))))
            : el('p', {}, 'No refunds.'),
          ['succeeded', 'partially_refunded'].includes(payment.status)
            ? el('form', { class: 'row', onsubmit: (event) => { event.preventDefault(); act('POST', `/api/v1/payments/${payment.id}/refund`, refundAmount.value ? { amount: refundAmount.value } : {}, 'Refunded.'); } },
              el('label', { for: 'refund-amount' }, 'Refund amount (empty: all that is left)'), refundAmount,
              el('button', { type: 'submit', class: 'secondary' }, 'Refund'))
            : null)
        : el('p', {}, 'No payment.'),
      el('h2', {}, 'Saga log'),
      el('div', { class: 'table-wrap' }, stacked(el('table', { id: 'saga-log' },
        el('thead', {}, el('tr', {}, ['Step', 'Status', 'Details', 'When'].map((h) => el('th', { scope: 'col' }, h)))),
        el('tbody', {}, saga.items.map((entry) => el('tr', {},
          el('td', {}, `${entry.step_name}${entry.is_compensating ? ' (compensating)' : ''}`),
          el('td', {}, entry.status), el('td', {}, entry.details), el('td', {}, when(entry.created_at)))))))),
      el('h2', {}, 'Notifications'),
      notifications.items.length
        ? el('div', { class: 'table-wrap' }, stacked(el('table', { id: 'notifications' },
          el('thead', {}, el('tr', {}, ['Kind', 'Channel', 'Status', 'Attempts', 'Sent', ''].map((h) => el('th', { scope: 'col' }, h)))),
          el('tbody', {}, notifications.items.map((notification) => el('tr', {},
            el('td', {}, notification.kind.replaceAll('_', ' ')),
            el('td', {}, notification.channel),
            el('td', {}, notification.status),
            el('td', {}, notification.attempts),
            el('td', {}, when(notification.sent_at)),
            el('td', {}, notification.status === 'failed'
              ? el('button', { type: 'button', class: 'secondary', onclick: () => act('POST', `/api/v1/notifications/${notification.id}/retry`, undefined, 'Retrying the notification.') }, 'Retry')
              : '')))))))
        : el('p', {}, 'None yet.'),
    );
    if (focused) holder.querySelector(`#${focused}`)?.focus();
    return order;
  };
  // One render at a time; an event during one asks for one more after it.
  let rendering = null;
  let again = false;
  const refresh = async () => {
    if (rendering) { again = true; return; }
    do {
      again = false;
      rendering = render();
      await rendering;
    } while (again);
    rendering = null;
  };
  show(el('h1', {}, `Order ${orderId.slice(-12)}`), el('p', {}, el('a', { href: '/admin/orders' }, 'All orders')), status, holder);
  await refresh();
  // The event log, not the order's own stream: that one ends when the
  // order is final, while a cancelled order's refund, or an operator's,
  // is recorded after that.
  follow('/api/v1/events/stream', {
    token: admin.token,
    // The stream starts at the log's head when it opens: read the order
    // again then, in case it changed since the first render.
    onState: (state) => { if (state === 'open') refresh(); },
    onEvent: (name, data) => { if (data?.payload?.order_id === orderId) refresh(); },
  });
}

// --- live -------------------------------------------------------------

function parseMetrics(text) {
  const values = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/);
    if (!match) continue;
    const name = match[1];
    // A family's total over its labels, and each labelled series as written.
    values.set(name, (values.get(name) || 0) + Number(match[3]));
    if (match[2]) values.set(name + match[2], Number(match[3]));
  }
  return values;
}

function chart(title, unit) {
  const canvas = el('canvas', { width: '300', height: '100', role: 'img', 'aria-label': title });
  const latest = el('p', { class: 'meta', 'aria-live': 'off' }, '–');
  const points = [];
  const draw = () => {
    const context = canvas.getContext('2d');
    const { width, height } = canvas;
    context.clearRect(0, 0, width, height);
    const max = Math.max(1e-9, ...points);
    // The baseline (zero), then the samples, newest on the right; a
    // single sample is a dot.
    context.strokeStyle = '#767676';
    context.lineWidth = 1;
    context.beginPath();
    context.moveTo(0, height - 3.5);
    context.lineTo(width, height - 3.5);
    context.stroke();
    const at = (value, index) => [
      points.length === 1 ? width - 4 : (index / (points.length - 1)) * (width - 6) + 2,
      height - 4 - (value / max) * (height - 8),
    ];
    context.strokeStyle = '#0b5cad';
    context.fillStyle = '#0b5cad';
    context.lineWidth = 2;
    if (points.length === 1) {
      const [x, y] = at(points[0], 0);
      context.beginPath();
      context.arc(x, y, 3, 0, 2 * Math.PI);
      context.fill();
      return;
    }
    context.beginPath();
    points.forEach((value, index) => {
      const [x, y] = at(value, index);
      if (index === 0) context.moveTo(x, y); else context.lineTo(x, y);
    });
    context.stroke();
  };
  const format = (value) => (Number.isFinite(value) ? value.toFixed(value < 10 ? 2 : 0) : '–');
  return {
    node: el('div', { class: 'chart' }, el('h3', {}, title), canvas, latest),
    push(value) {
      points.push(value);
      if (points.length > 60) points.shift();
      latest.textContent = `now: ${format(value)} ${unit}; peak of the last ${points.length} samples: ${format(Math.max(...points))} ${unit}`;
      canvas.setAttribute('aria-label', `${title}: ${latest.textContent}`);
      draw();
    },
  };
}

async function livePage() {
  document.title = 'Live – Mercato console';
  const list = el('ol', { class: 'events', id: 'events', reversed: true, 'aria-label': 'Latest events' });
  const streamState = el('p', { id: 'stream-state', 'aria-live': 'polite' }, 'Connecting to the event stream…');
  const charts = {
    reservations: chart('Reservations per second', '/s'),
    batch: chart('Commands per batch', 'commands'),
    commit: chart('Commit latency', 'ms'),
    queue: chart('Writer queue depth', 'commands'),
  };
  const statusTable = el('tbody', {});
  show(
    el('h1', {}, 'Live'),
    el('section', { 'aria-labelledby': 'metrics-heading' },
      el('h2', { id: 'metrics-heading' }, 'The writer, from /metrics'),
      el('div', { class: 'charts' }, Object.values(charts).map((c) => c.node))),
    el('section', { 'aria-labelledby': 'statuses-heading' },
      el('h2', { id: 'statuses-heading' }, 'Orders per status'),
      el('table', {}, el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Status'), el('th', { scope: 'col' }, 'Orders'))), statusTable)),
    el('section', { 'aria-labelledby': 'events-heading' },
      el('h2', { id: 'events-heading' }, 'Event stream'),
      streamState,
      list),
  );
  let previous = null;
  const sample = async () => {
    try {
      const response = await fetch('/metrics');
      const values = parseMetrics(await response.text());
      const now = performance.now();
      const read = (name) => values.get(name) || 0;
      const current = {
        at: now,
        // Reservations made (not those committed, released or expired).
        reservations: read('mercato_reservations_total{outcome="created"}'),
        batchSum: read('mercato_writer_batch_commands_sum'),
        batchCount: read('mercato_writer_batch_commands_count'),
        commitSum: read('mercato_writer_commit_duration_seconds_sum'),
        commitCount: read('mercato_writer_commit_duration_seconds_count'),
      };
      if (previous) {
        const seconds = (current.at - previous.at) / 1000;
        const batches = current.batchCount - previous.batchCount;
        const commits = current.commitCount - previous.commitCount;
        charts.reservations.push((current.reservations - previous.reservations) / seconds);
        charts.batch.push(batches > 0 ? (current.batchSum - previous.batchSum) / batches : 0);
        charts.commit.push(commits > 0 ? ((current.commitSum - previous.commitSum) / commits) * 1000 : 0);
      }
      charts.queue.push(read('mercato_writer_queue_depth'));
      previous = current;
    } catch { /* the next sample tries again */ }
  };
  const countStatuses = async () => {
    const counts = await Promise.all(STATUSES.map(async (status) => {
      try {
        const page = await call('GET', `/api/v1/orders?status=${status}&limit=500`);
        return `${page.items.length}${page.next_cursor ? '+' : ''}`;
      } catch { return '?'; }
    }));
    statusTable.replaceChildren(...STATUSES.map((status, index) => el('tr', { 'data-status': status },
      el('td', {}, statusBadge(status)), el('td', {}, counts[index]))));
  };
  await sample();
  await countStatuses();
  setInterval(sample, 2000);
  setInterval(countStatuses, 5000);
  // New events only; the list keeps the latest 200.
  follow('/api/v1/events/stream', {
    token: admin.token,
    onState: (state, error) => {
      streamState.textContent = state === 'open' ? 'Connected: new events appear at the top.' : state === 'error' ? error.message : 'Disconnected.';
    },
    onEvent: (name, data) => {
      const payload = data?.payload || {};
      const subject = payload.order_id ? `order …${payload.order_id.slice(-12)}` : payload.product_id ? `product ${payload.product_id}` : '';
      list.prepend(el('li', { 'data-type': name }, `#${data.seq} ${when(data.created_at)} ${name} ${subject}`));
      while (list.children.length > 200) list.lastChild.remove();
    },
  });
}

// --- the router -------------------------------------------------------

async function route() {
  renderWho();
  if (!admin.token) {
    signInPage();
    document.body.dataset.ready = 'true';
    return;
  }
  const path = location.pathname;
  let match;
  if (path === '/admin') await stockPage();
  else if (path === '/admin/orders') await ordersPage();
  else if ((match = path.match(/^\/admin\/orders\/([0-9a-fA-F-]{36})$/))) await orderPage(match[1]);
  else if (path === '/admin/events') await livePage();
  else show(el('h1', {}, 'Not found'));
  document.body.dataset.ready = 'true';
}

route();
