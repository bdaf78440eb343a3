// The technician app's service worker: keeps this version's shell and files so the app opens
// without a network. It never touches API calls: they go to the network as they are, and the
// app itself says when it is offline.

const VERSION = '%VERSION%';
const FILES = %ASSETS%;
const CACHE = 'revisit-tech-' + VERSION;
const SHELL = new URL('./', self.registration.scope).pathname;

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE)
    .then((c) => c.addAll([SHELL, ...FILES]))
    .then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k.startsWith('revisit-tech-') && k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  if (req.mode === 'navigate' && url.pathname === SHELL) {
    // The network's shell when it answers within a few seconds (it may be a newer version),
    // else the one kept with this version's files.
    event.respondWith(fromNetwork(req, 4000).catch(() => caches.match(SHELL, { cacheName: CACHE })));
  } else if (url.pathname.startsWith('/static/' + VERSION + '/')) {
    // Versioned files never change: the kept copy is the file.
    event.respondWith(caches.match(req, { cacheName: CACHE }).then((hit) => hit || fetch(req)));
  }
});

function fromNetwork(req, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timeout')), ms);
    fetch(req).then((r) => { clearTimeout(timer); if (r.ok) resolve(r); else reject(new Error(String(r.status))); },
      (e) => { clearTimeout(timer); reject(e); });
  });
}
