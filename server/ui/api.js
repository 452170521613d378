// What the storefront and the console share: calls to the v1 API with
// errors put in words, server-sent event streams read with fetch (so that
// they can carry a bearer token), and a small DOM builder that only ever
// sets text, never HTML.

/** An API call that failed, with the problem document and a sentence. */
export class ApiProblem extends Error {
  constructor(status, problem) {
    super(describe(status, problem));
    this.status = status;
    this.problem = problem || {};
    this.code = this.problem.code || '';
  }
}

const REASONS = {
  card_declined: 'the card was declined',
  insufficient_funds: 'the card has insufficient funds',
  insufficient_stock: 'there was not enough stock',
  reservation_expired: 'the stock hold expired before payment',
  cancelled: 'it was cancelled',
};

/** A failure reason (`card_declined`, ...) in words. */
export function reason(code) {
  if (!code) return '';
  return REASONS[code] || code.replaceAll('_', ' ');
}

/** A problem document in a sentence a person can act on. */
export function describe(status, problem) {
  const p = problem || {};
  const detail = p.detail ? ` (${p.detail})` : '';
  switch (p.code) {
    case 'insufficient_stock':
      return `Not enough stock: ${p.available ?? 'fewer'} available, ${p.requested ?? 'more'} asked for.`;
    case 'invalid_request':
      return `Please check the form: ${p.detail || 'a value is not valid'}.`;
    case 'unauthorized':
      return 'You are not signed in, or your sign-in has expired. Please sign in again.';
    case 'forbidden':
      return 'You may not do this with your account.';
    case 'not_found':
      return `Not found${detail}.`;
    case 'invalid_state':
      return `That is not possible now: it is ${String(p.state || 'in another state').toLowerCase().replaceAll('_', ' ')}.`;
    case 'refund_exceeds_captured':
      return `That is more than is left to refund (${p.refundable ?? 'less'}).`;
    case 'demo_sign_in_disabled':
      return 'The demo sign-in is switched off on this shop. Please use the shop\'s own login.';
    case 'overloaded':
    case 'shutting_down':
    case 'storage_unavailable':
    case 'search_unavailable':
    case 'too_many_streams':
      return `The shop is busy right now; please try again in a moment${detail}.`;
    case 'rate_limited':
      return 'Too many requests; please wait a moment and try again.';
    default:
      if (status === 0) return 'The shop cannot be reached. Check your connection and try again.';
      return p.detail ? `Something went wrong: ${p.detail}.` : `Something went wrong (HTTP ${status}).`;
  }
}

/**
 * Calls the API: `method path`, a JSON `body`, a bearer `token`. Answers
 * the parsed JSON (or null for 204); throws ApiProblem otherwise.
 */
export async function api(method, path, { body, token, signal } = {}) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new ApiProblem(0, null);
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!response.ok) throw new ApiProblem(response.status, json);
  return json;
}

/**
 * Follows a server-sent event stream at `path` with `token`, calling
 * `onEvent(name, data, id)` for each message. Reconnects (resuming after
 * the last `id:`) when the connection drops, unless the server ended the
 * stream and `reconnect` says not to. Answers a function that stops it.
 */
export function follow(path, { token, onEvent, onState, reconnect = () => true }) {
  const controller = new AbortController();
  let lastId = null;
  let stopped = false;
  let delay = 500;
  const run = async () => {
    while (!stopped) {
      let ended = false;
      try {
        const headers = { Accept: 'text/event-stream' };
        if (token) headers.Authorization = `Bearer ${token}`;
        if (lastId !== null) headers['Last-Event-ID'] = lastId;
        const response = await fetch(path, { headers, signal: controller.signal });
        if (!response.ok) {
          let problem = null;
          try { problem = await response.json(); } catch { problem = null; }
          const failure = new ApiProblem(response.status, problem);
          onState?.('error', failure);
          if (response.status < 500) return;
        } else {
          onState?.('open');
          delay = 500;
          await read(response.body, (name, data, id) => {
            if (id !== null) lastId = id;
            onEvent(name, data, id);
          });
          ended = true;
        }
      } catch (error) {
        if (stopped || error.name === 'AbortError') return;
        onState?.('error', new ApiProblem(0, null));
      }
      if (stopped || (ended && !reconnect())) {
        onState?.('closed');
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 10000);
    }
  };
  run();
  return () => {
    stopped = true;
    controller.abort();
  };
}

async function read(body, emit) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let name = 'message';
  let data = [];
  let id = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let newline;
    while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + (buffer.startsWith('\r\n', newline) ? 2 : 1));
      if (line === '') {
        if (data.length) {
          const text = data.join('\n');
          let parsed = text;
          try { parsed = JSON.parse(text); } catch { parsed = text; }
          emit(name, parsed, id);
        }
        name = 'message';
        data = [];
        id = null;
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let rest = colon < 0 ? '' : line.slice(colon + 1);
      if (rest.startsWith(' ')) rest = rest.slice(1);
      if (field === 'event') name = rest;
      else if (field === 'data') data.push(rest);
      else if (field === 'id') id = rest;
    }
  }
}

/** Builds an element: `el('a', {href: '/'}, 'text', child, ...)`. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      node.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === 'class') {
      node.className = value;
    } else if (value === true) {
      node.setAttribute(key, '');
    } else {
      node.setAttribute(key, String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replaces `node`'s content with the children that are not null. */
export function fill(node, ...children) {
  node.replaceChildren(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
}

/** Replaces the page's main content. */
export function show(...children) {
  fill(document.getElementById('main'), ...children);
}

/**
 * Marks a table to become one card per row at phone width (app.css,
 * `table.stack`): each body cell gets its column's heading as
 * `data-label`, which the card shows before the value.
 */
export function stacked(table) {
  const headings = [...table.querySelectorAll('thead th')].map((heading) => heading.textContent);
  for (const row of table.querySelectorAll('tbody tr')) {
    [...row.children].forEach((cell, index) => {
      if (headings[index] && !cell.hasAttribute('data-label')) cell.dataset.label = headings[index];
    });
  }
  table.classList.add('stack');
  return table;
}

const CATEGORY_NAMES = {
  'home-kitchen': 'Home & kitchen',
  'sports-outdoors': 'Sports & outdoors',
  'toys-games': 'Toys & games',
};

/** A category's slug (`pet-supplies`) as a name (`Pet supplies`). */
export function categoryName(slug) {
  if (!slug) return '';
  if (CATEGORY_NAMES[slug]) return CATEGORY_NAMES[slug];
  const words = slug.replaceAll('-', ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** A problem paragraph (role=alert so it is read out). */
export function problemBox(error) {
  return el('p', { class: 'problem', role: 'alert' }, error instanceof Error ? error.message : String(error));
}

/** A money string ("19.99") with its currency, for display. */
export function money(amount, currency) {
  const number = Number(amount);
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency: currency || 'USD' }).format(number);
  } catch {
    return `${amount} ${currency || ''}`.trim();
  }
}

/** A time for people. */
export function when(rfc3339) {
  if (!rfc3339) return '';
  const date = new Date(rfc3339);
  return date.toLocaleString('en', { dateStyle: 'medium', timeStyle: 'medium' });
}

/** An order status in words, and how it looks. */
export function statusWords(status) {
  return {
    PENDING: ['Reserving stock', 'wait'],
    AWAITING_PAYMENT: ['Awaiting payment', 'wait'],
    CONFIRMED: ['Confirmed', 'good'],
    SHIPPED: ['Shipped', 'good'],
    DELIVERED: ['Delivered', 'good'],
    CANCELLED: ['Cancelled', 'bad'],
    PAYMENT_FAILED: ['Payment failed', 'bad'],
  }[status] || [status, 'wait'];
}

/** A status badge. */
export function statusBadge(status) {
  const [words, look] = statusWords(status);
  return el('span', { class: `status ${look}`, 'data-status': status }, words);
}

/** Availability in words: "In stock", "Only 3 left", "Sold out". */
export function availability(stock, lowThreshold = 10) {
  if (!stock) return ['', ''];
  if (stock.available <= 0) return ['Sold out', 'stock-out'];
  if (stock.available <= lowThreshold) return [`Only ${stock.available} left`, 'stock-low'];
  return [`In stock (${stock.available} available)`, 'stock-ok'];
}
