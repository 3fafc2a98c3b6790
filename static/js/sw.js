/* 群众监督's service worker: a supervisor who loses the signal can still open the form and write
 * an issue; drafts.js keeps it on the phone and sends it when the network is back.
 *
 * Pages come from the network first. The issue form (/issues/new/) is kept each time it loads,
 * so that it opens offline as it was last seen; any other page offline shows /offline/. Static
 * files are kept as they are fetched. Logging out clears everything kept here (drafts.js).
 */
"use strict";

var CACHE = "qunzhong-v1";
var OFFLINE = "/offline/";
var FORM = "/issues/new/";

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(CACHE).then(function (cache) { return cache.add(OFFLINE); }));
  self.skipWaiting();
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (key) { return key !== CACHE; })
      .map(function (key) { return caches.delete(key); }));
  }).then(function () { return self.clients.claim(); }));
});

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") { return; }
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) { return; }
  if (request.mode === "navigate") {
    event.respondWith(fetch(request).then(function (response) {
      if (url.pathname === FORM && response.ok) {
        var copy = response.clone();
        caches.open(CACHE).then(function (cache) { cache.put(FORM, copy); });
      }
      return response;
    }).catch(function () {
      return caches.match(url.pathname === FORM ? FORM : OFFLINE).then(function (kept) {
        return kept || caches.match(OFFLINE);
      });
    }));
    return;
  }
  if (url.pathname.indexOf("/static/") === 0) {
    event.respondWith(caches.match(request).then(function (kept) {
      return kept || fetch(request).then(function (response) {
        if (response.ok) {
          var copy = response.clone();
          caches.open(CACHE).then(function (cache) { cache.put(request, copy); });
        }
        return response;
      });
    }));
  }
});
