/*! journeymap.js: the first-party tag of journeymap (Segment tracking-API messages). */
/*
 * Snippet, served from the site's own domain:
 *
 *   <script>window.journeymap = window.journeymap || [];</script>
 *   <script src="https://track.example.com/tag.js" data-write-key="KEY" async></script>
 *
 * Attributes of the script element:
 *   data-write-key        the source's write key, sent as `writeKey` in every body
 *   data-endpoint         collector base URL; default: the origin of the script's own URL
 *   data-cookie           name of the anonymous-id cookie that the collector sets (default jm_aid)
 *   data-require-consent  send and store nothing until journeymap.consent(true) is called
 *   data-respect-dnt      the same while the browser sends Do Not Track or Global Privacy Control
 *
 * Every message carries Meta's _fbp and _fbc cookies in its context when the page has them.
 *
 * API on window.journeymap: page(name?, properties?), track(event, properties?),
 * identify(userId?, traits?), group(groupId, traits?), alias(userId, previousId?), reset(),
 * consent(granted). Calls pushed onto the array before the tag loads, as [method, ...args],
 * run in order when it loads. The tag is ES2017 without dependencies, so it runs unbuilt in
 * every current browser, and none of its functions throws into the host page.
 */
(() => {
  'use strict';

  try {
    const VERSION = '0.1.0';
    const CLICK_IDS = ['gclid', 'gbraid', 'wbraid', 'fbclid', 'li_fat_id', 'msclkid', 'ttclid'];
    // Meta Pixel's browser and click cookies, which conversion sync sends back to Meta.
    const META_COOKIES = ['_fbp', '_fbc'];
    const TOUCH_KEY = 'jm_touch';
    const USER_KEY = 'jm_uid';
    const ANONYMOUS_KEY = 'jm_aid';
    // A stored touch belongs to one visit, and a visit ends after 30 minutes without a message
    // (the collector's default session timeout), so a touch never reaches a later visit.
    const VISIT_MS = 30 * 60 * 1000;
    const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

    const win = window;
    const doc = document;
    const previous = win.journeymap;
    if (previous && previous.version) return;

    const noop = () => {};
    const guard = (fn) => (...args) => {
      try {
        return fn(...args);
      } catch (error) {
        return undefined;
      }
    };
    const iso = (ms) => new Date(ms).toISOString();
    // A shallow copy of an object argument, or {} for anything else.
    const copy = (value) => Object.assign({}, value && typeof value === 'object' ? value : {});
    const hasKeys = (object) => Object.keys(copy(object)).length > 0;

    // localStorage throws in sandboxed frames and when the user blocks site data, and then
    // the tag keeps its state in memory for the page's lifetime.
    const storage = {
      get: guard((key) => JSON.parse(win.localStorage.getItem(key))),
      set: guard((key, value) => win.localStorage.setItem(key, JSON.stringify(value))),
      remove: guard((key) => win.localStorage.removeItem(key)),
    };

    const script = doc.currentScript || doc.querySelector('script[data-write-key]');
    const attribute = (name) => (script && script.getAttribute('data-' + name)) || null;
    const flag = (name) => !!script && script.hasAttribute('data-' + name);
    const writeKey = attribute('write-key');
    const cookieName = attribute('cookie') || 'jm_aid';
    const endpoint = (
      attribute('endpoint') || new URL((script && script.src) || location.href).origin
    ).replace(/\/+$/, '');
    const nav = win.navigator || {};
    const doNotTrack = nav.doNotTrack === '1' || nav.globalPrivacyControl === true;

    let consented = !(flag('require-consent') || (flag('respect-dnt') && doNotTrack));
    let replayed = false;
    let begun = false;
    let pageSent = false;
    let anonymousId = null;
    let userId = null;
    // The visit's touch, also kept here for browsers that refuse localStorage.
    let touch = null;

    const uuid = () => {
      const crypto = win.crypto;
      if (crypto.randomUUID) return crypto.randomUUID();
      const bytes = crypto.getRandomValues(new Uint8Array(16));
      bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
      bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
      const hex = Array.from(bytes, (byte) => (byte + 0x100).toString(16).slice(1)).join('');
      return hex.replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-');
    };

    const readCookie = (name) => {
      for (const pair of (doc.cookie || '').split(/;\s*/)) {
        const cut = pair.indexOf('=');
        if (cut > 0 && pair.slice(0, cut) === name) {
          try {
            return decodeURIComponent(pair.slice(cut + 1));
          } catch (error) {
            return pair.slice(cut + 1);
          }
        }
      }
      return null;
    };

    // The collector sets the cookie, so the tag does not know its domain. It expires the cookie
    // on this host and on every parent domain.
    const expireCookie = () => {
      const labels = location.hostname.split('.');
      doc.cookie = cookieName + '=; Max-Age=0; Path=/';
      for (let i = 0; i < labels.length - 1; i++) {
        doc.cookie = cookieName + '=; Max-Age=0; Path=/; Domain=' + labels.slice(i).join('.');
      }
    };

    // The collector's cookie wins over the stored copy, because the cookie is shared by the
    // site's subdomains and outlives the caps that browsers such as Safari put on storage
    // written by scripts.
    const currentAnonymousId = () => {
      if (!anonymousId) {
        anonymousId = readCookie(cookieName) || storage.get(ANONYMOUS_KEY) || uuid();
        storage.set(ANONYMOUS_KEY, anonymousId);
      }
      return anonymousId;
    };

    // Campaign (utm_*) and click-id parameters of the landing URL, or null when it has none.
    // Segment's names: utm_campaign becomes `name`, and any other utm_X becomes X.
    const landingTouch = () => {
      const campaign = {};
      const clickIds = {};
      let found = false;
      new URLSearchParams(location.search).forEach((value, key) => {
        let target = null;
        let name = key;
        if (key.indexOf('utm_') === 0 && key.length > 4) {
          target = campaign;
          name = key === 'utm_campaign' ? 'name' : key.slice(4);
        } else if (CLICK_IDS.indexOf(key) >= 0) {
          target = clickIds;
        }
        if (target && value && !(name in target)) {
          target[name] = value;
          found = true;
        }
      });
      return found ? { campaign, clickIds } : null;
    };
    const landing = landingTouch();

    // Every message keeps the visit's touch alive. Another tab's newer landing wins.
    const currentTouch = (now) => {
      const stored = storage.get(TOUCH_KEY);
      if (stored && typeof stored === 'object') touch = stored;
      if (touch && !(now - touch.seenAt < VISIT_MS)) {
        touch = null;
        storage.remove(TOUCH_KEY);
      }
      if (touch) {
        touch.seenAt = now;
        storage.set(TOUCH_KEY, touch);
      }
      return touch;
    };

    // The page without its fragment, which can hold tokens (an OAuth implicit grant, say).
    const pageContext = () => ({
      path: location.pathname,
      referrer: doc.referrer,
      search: location.search,
      title: doc.title,
      url: location.href.split('#')[0],
    });

    const message = (type, fields) => {
      const now = Date.now();
      const context = {
        library: { name: 'journeymap.js', version: VERSION },
        page: pageContext(),
        userAgent: nav.userAgent,
      };
      META_COOKIES.forEach((name) => {
        const value = readCookie(name);
        if (value) context[name] = value;
      });
      const visit = currentTouch(now);
      if (visit) {
        if (hasKeys(visit.campaign)) context.campaign = visit.campaign;
        if (hasKeys(visit.clickIds)) context.clickIds = visit.clickIds;
        context.touchCapturedAt = visit.capturedAt;
      }
      const body = {
        type,
        messageId: uuid(),
        timestamp: iso(now),
        anonymousId: currentAnonymousId(),
      };
      if (userId) body.userId = userId;
      return Object.assign(body, fields, { context });
    };

    // text/plain keeps the POST a CORS "simple request", so the browser sends no preflight.
    // While the page is hidden (the user leaves or switches tabs) sendBeacon outlives the page.
    // The tag drops a failed send. It never retries and never reports errors to the host page.
    const send = (type, fields, leaving) => {
      if (!ready()) return;
      const body = message(type, fields);
      if (writeKey) body.writeKey = writeKey;
      body.sentAt = iso(Date.now());
      const url = endpoint + '/v1/' + type;
      const text = JSON.stringify(body);
      const beacon = () => {
        try {
          return !!nav.sendBeacon && nav.sendBeacon(url, text);
        } catch (error) {
          return false;
        }
      };
      if ((leaving || doc.visibilityState === 'hidden') && beacon()) return;
      try {
        const request = win.fetch(url, {
          method: 'POST',
          keepalive: true,
          credentials: 'include',
          headers: { 'Content-Type': 'text/plain' },
          body: text,
        });
        if (request && request.catch) request.catch(noop);
      } catch (error) {
        beacon();
      }
    };

    const page = (name, properties) => {
      if (name && typeof name === 'object') {
        properties = name;
        name = null;
      }
      const fields = { properties: Object.assign(pageContext(), copy(properties)) };
      if (name) fields.name = String(name);
      send('page', fields);
    };

    // identify(traits) means identify(null, traits), which the collector links by anonymousId.
    const identify = (id, traits, leaving) => {
      if (id && typeof id === 'object') {
        traits = id;
        id = null;
      }
      if (!ready()) return;
      if (id !== null && id !== undefined && id !== '') {
        userId = String(id);
        storage.set(USER_KEY, userId);
      }
      send('identify', { traits: copy(traits) }, leaving);
    };

    const forget = () => {
      anonymousId = null;
      userId = null;
      touch = null;
      storage.remove(ANONYMOUS_KEY);
      storage.remove(USER_KEY);
      storage.remove(TOUCH_KEY);
      expireCookie();
    };

    // Returns whether the tag may send. Before the first message that consent allows, it
    // stores the landing's touch and reads the user id that an earlier page stored.
    const ready = () => {
      if (consented && !begun) {
        begun = true;
        if (landing) {
          const now = Date.now();
          touch = Object.assign({ capturedAt: iso(now), seenAt: now }, landing);
          storage.set(TOUCH_KEY, touch);
        }
        userId = userId || storage.get(USER_KEY);
      }
      return consented;
    };

    const loadPage = () => {
      if (consented && !pageSent) {
        pageSent = true;
        page();
      }
    };

    // An email field of a submitted form identifies the visitor, unless the form opts out.
    const onSubmit = (event) => {
      const form = event.target;
      if (!form || !form.elements || form.hasAttribute('data-jm-ignore')) return;
      for (let i = 0; i < form.elements.length; i++) {
        const input = form.elements[i];
        const type = String(input.type || '').toLowerCase();
        const named = /email/i.test(input.name || '') && /^(text|hidden|)$/.test(type);
        const value = String(input.value || '').trim();
        if ((type === 'email' || named) && EMAIL.test(value)) {
          identify(null, { email: value }, true);
          return;
        }
      }
    };

    const api = {
      version: VERSION,
      page,
      identify: (id, traits) => identify(id, traits, false),
      track: (event, properties) => {
        if (event) send('track', { event: String(event), properties: copy(properties) });
      },
      group: (groupId, traits) => {
        if (groupId) send('group', { groupId: String(groupId), traits: copy(traits) });
      },
      alias: (newId, previousId) => {
        if (!newId || !ready()) return;
        const from = previousId || userId || currentAnonymousId();
        send('alias', { userId: String(newId), previousId: String(from) });
      },
      // Forgets the person, as after a logout on a shared device: the tag drops the user id
      // and the touch, and takes a new anonymous id. It does not read the cookie again,
      // because a cookie that expireCookie cannot reach survives until a response replaces it.
      reset: () => {
        forget();
        if (ready()) {
          anonymousId = uuid();
          storage.set(ANONYMOUS_KEY, anonymousId);
        }
      },
      // consent(false) stops sending and deletes the stored ids and the anonymous-id cookie.
      consent: (granted) => {
        if (granted === false) {
          consented = false;
          forget();
          return;
        }
        consented = true;
        if (replayed) loadPage();
      },
      push: (call) => {
        const args = Array.prototype.slice.call(call || []);
        const method = api[args[0]];
        if (typeof method === 'function' && args[0] !== 'push') method.apply(null, args.slice(1));
      },
    };
    Object.keys(api).forEach((key) => {
      if (typeof api[key] === 'function') api[key] = guard(api[key]);
    });

    // Queued calls run before the load's page call, so that a queued consent(true) or
    // identify() already applies to it.
    win.journeymap = api;
    if (Array.isArray(previous)) previous.forEach((call) => api.push(call));
    replayed = true;
    loadPage();

    // Capture phase, because the page's own handlers may stop propagation or navigate away.
    doc.addEventListener('submit', guard(onSubmit), true);
  } catch (error) {
    // A browser without the APIs above gets no tag, and the page gets no error.
  }
})();
