// Runs journeymap.js in a minimal fake browser and prints what it sent, as JSON.
//
// Usage: node tag_harness.mjs < scenario.json
//
// The scenario is one browser profile that visits pages in turn. Its localStorage, cookies and
// clock carry over from one load to the next:
//
//   {
//     "tag": "/path/to/journeymap.js",
//     "start": 1772366400000,           // the clock at the first load (ms since the epoch)
//     "cookies": {"jm_aid": "..."},     // the cookie jar before the first load
//     "lockedCookies": ["jm_aid"],      // cookies that script writes cannot change, as when
//                                       // the server set them for a Domain the tag missed
//     "serverSetsCookie": false,        // each request sets jm_aid to its anonymousId, as
//                                       // the collector's Set-Cookie response header would
//     "loads": [{
//       "url": "https://www.example.com/pricing?utm_source=google",
//       "referrer": "", "title": "Pricing", "after": 0,   // ms since the previous load
//       "script": {"src": "https://track.example.com/tag.js", "attributes": {...}},
//       "currentScript": true,          // false: document.currentScript is null
//       "queue": [["track", "Clicked"]],// calls pushed onto window.journeymap before the tag
//       "fetch": "ok",                  // ok | reject | throw | absent
//       "beacon": true,                 // whether navigator.sendBeacon exists
//       "randomUUID": true,             // whether crypto.randomUUID exists
//       "navigator": {"doNotTrack": "1"},
//       "actions": [
//         {"call": "track", "args": ["Signed Up", {}]},
//         {"submit": {"attributes": {"data-jm-ignore": ""},
//                     "inputs": [{"type": "email", "name": "e", "value": "a@b.co"}]}},
//         {"hide": true},                // the page becomes hidden (the user leaves)
//         {"wait": 60000}                // the clock moves on
//       ]
//     }]
//   }
//
// Output: {"loads": [{"requests", "errors", "cookieWrites", "api"}], "storage", "cookies"}.
// Each request has its transport (fetch or beacon), url, fetch options and parsed body.

import { readFileSync } from 'node:fs';
import vm from 'node:vm';
import { webcrypto } from 'node:crypto';

const scenario = JSON.parse(readFileSync(0, 'utf8'));
const source = readFileSync(scenario.tag, 'utf8');
const storage = new Map(Object.entries(scenario.storage || {}));
const cookies = new Map(Object.entries(scenario.cookies || {}));
const lockedCookies = new Set(scenario.lockedCookies || []);
const clock = { now: scenario.start ?? Date.parse('2026-03-01T12:00:00Z') };

// Errors that escape the tag: exceptions thrown by a call, and promise rejections that no
// handler caught.
let escaped = [];
process.on('unhandledRejection', (reason) => escaped.push(`unhandled rejection: ${reason}`));

function fakeLocalStorage() {
  return {
    getItem: (key) => (storage.has(key) ? storage.get(key) : null),
    setItem: (key, value) => storage.set(key, String(value)),
    removeItem: (key) => storage.delete(key),
  };
}

function fakeCookieJar(writes) {
  return {
    get cookie() {
      return [...cookies].map(([name, value]) => `${name}=${value}`).join('; ');
    },
    // The jar reads only name=value and Max-Age=0, and it ignores Path and Domain.
    set cookie(text) {
      writes.push(text);
      const [pair, ...attributes] = text.split(';').map((part) => part.trim());
      const cut = pair.indexOf('=');
      const name = pair.slice(0, cut);
      if (lockedCookies.has(name)) return;
      if (attributes.some((attribute) => /^max-age=0$/i.test(attribute))) cookies.delete(name);
      else cookies.set(name, pair.slice(cut + 1));
    },
  };
}

function fakeElement(attributes, extra = {}) {
  return Object.assign(
    {
      getAttribute: (name) => (name in attributes ? String(attributes[name]) : null),
      hasAttribute: (name) => name in attributes,
    },
    extra,
  );
}

function record(requests, transport, url, options, text) {
  let body;
  try {
    body = JSON.parse(text);
  } catch (error) {
    body = { unparsed: String(text) };
  }
  const { body: _sent, ...rest } = options || {};
  requests.push({ transport, url, options: options ? rest : null, body });
  if (scenario.serverSetsCookie && body.anonymousId) {
    cookies.set('jm_aid', body.anonymousId);
  }
}

async function runLoad(load) {
  clock.now += load.after || 0;
  escaped = [];
  const requests = [];
  const cookieWrites = [];
  const url = new URL(load.url);
  const scriptSpec = load.script || {};
  const script = fakeElement(scriptSpec.attributes || {}, {
    src: scriptSpec.src ?? 'https://track.example.com/tag.js',
  });
  const listeners = [];

  const document = Object.assign(fakeCookieJar(cookieWrites), {
    title: load.title ?? 'Home',
    referrer: load.referrer ?? '',
    visibilityState: 'visible',
    currentScript: load.currentScript === false ? null : script,
    querySelector: (selector) => {
      const found = selector === 'script[data-write-key]' && script.hasAttribute('data-write-key');
      return found ? script : null;
    },
    addEventListener: (type, listener, capture) => listeners.push({ type, listener, capture }),
  });

  const navigator = Object.assign({ userAgent: 'tag-harness/1.0' }, load.navigator || {});
  if (load.beacon !== false) {
    navigator.sendBeacon = (target, text) => {
      record(requests, 'beacon', target, null, text);
      return true;
    };
  }

  const crypto = {
    getRandomValues: (array) => webcrypto.getRandomValues(array),
  };
  if (load.randomUUID !== false) crypto.randomUUID = () => webcrypto.randomUUID();

  const window = {
    document,
    navigator,
    crypto,
    localStorage: fakeLocalStorage(),
    location: {
      href: url.href,
      origin: url.origin,
      protocol: url.protocol,
      host: url.host,
      hostname: url.hostname,
      pathname: url.pathname,
      search: url.search,
      hash: url.hash,
    },
    URL,
    URLSearchParams,
    addEventListener: () => {},
  };
  window.window = window;
  window.journeymap = load.queue ? load.queue.map((call) => call.slice()) : undefined;

  const mode = load.fetch || 'ok';
  if (mode !== 'absent') {
    window.fetch = (target, options) => {
      if (mode === 'throw') throw new TypeError('fetch is broken on this page');
      record(requests, 'fetch', target, options, options.body);
      if (mode === 'reject') return Promise.reject(new TypeError('Failed to fetch'));
      return Promise.resolve({ ok: true, status: 200 });
    };
  }

  // The context has its own Date, whose Date.now reads the scenario's clock.
  const context = vm.createContext(window);
  vm.runInContext('(clock) => { Date.now = () => clock.now; }', context)(clock);

  try {
    vm.runInContext(source, context, { filename: 'journeymap.js' });
  } catch (error) {
    escaped.push(`load threw: ${error}`);
  }

  for (const action of load.actions || []) {
    try {
      if (action.call) {
        window.journeymap[action.call](...(action.args || []));
      } else if (action.push) {
        window.journeymap.push(action.push);
      } else if (action.hide) {
        document.visibilityState = 'hidden';
      } else if (action.wait) {
        clock.now += action.wait;
      } else if (action.submit) {
        const inputs = action.submit.inputs || [];
        const form = fakeElement(action.submit.attributes || {}, { elements: inputs });
        const event = { type: 'submit', target: form };
        for (const { type, listener, capture } of listeners) {
          if (type === 'submit' && capture) listener(event);
        }
      }
    } catch (error) {
      escaped.push(`action ${JSON.stringify(action)} threw: ${error}`);
    }
  }

  // Let rejected fetch promises settle, so that an unhandled rejection is reported here.
  await new Promise((resolve) => setTimeout(resolve, 0));
  await new Promise((resolve) => setImmediate(resolve));

  const api = window.journeymap;
  return {
    requests,
    errors: escaped,
    cookieWrites,
    api: api && !Array.isArray(api) ? Object.keys(api).sort() : null,
  };
}

const output = { loads: [] };
for (const load of scenario.loads) output.loads.push(await runLoad(load));
output.storage = Object.fromEntries(
  [...storage].map(([key, value]) => {
    try {
      return [key, JSON.parse(value)];
    } catch (error) {
      return [key, value];
    }
  }),
);
output.cookies = Object.fromEntries(cookies);
process.stdout.write(JSON.stringify(output));
