/* 群众监督: a dropped signal loses nothing.
 *
 * An issue that could not be sent stays on the phone (IndexedDB: text, choices and photos, with
 * its idempotency token) until it is sent: a banner says 「有 1 条反映还没发出去」 with
 * 「现在发送」. Sending again uses the same token, so the server files it exactly once. Drafts
 * belong to the person who wrote them (their id is kept with each) and are cleared on logout,
 * with the pages the service worker keeps for offline use.
 */
(function () {
  "use strict";

  var DB = "qunzhong-drafts";
  var STORE = "drafts";
  var owner = document.body.getAttribute("data-user") || "";

  function open() {
    return new Promise(function (resolve, reject) {
      if (!window.indexedDB) { reject(new Error("no IndexedDB")); return; }
      var request = indexedDB.open(DB, 1);
      request.onupgradeneeded = function () {
        request.result.createObjectStore(STORE, { keyPath: "token" });
      };
      request.onsuccess = function () { resolve(request.result); };
      request.onerror = function () { reject(request.error); };
    });
  }

  function run(mode, work) {
    return open().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(STORE, mode);
        var result = work(tx.objectStore(STORE));
        tx.oncomplete = function () { db.close(); resolve(result && result.result); };
        tx.onerror = function () { db.close(); reject(tx.error); };
      });
    });
  }

  function save(action, data) {
    var fields = [];
    var photos = [];
    data.forEach(function (value, name) {
      if (name === "csrfmiddlewaretoken") { return; }
      if (value instanceof Blob) {
        photos.push({ name: name, blob: value, filename: value.name || "photo.jpg" });
      } else {
        fields.push([name, value]);
      }
    });
    var token = data.get("token") || String(Date.now());
    var draft = {
      token: token, owner: owner, action: action, fields: fields, photos: photos,
      savedAt: new Date().toISOString()
    };
    return run("readwrite", function (store) { return store.put(draft); });
  }

  function all() {
    return run("readonly", function (store) { return store.getAll(); }).then(function (drafts) {
      return drafts || [];
    });
  }

  function mine() {
    return all().then(function (drafts) {
      // Another person's drafts on this phone are not theirs to see or send.
      var others = drafts.filter(function (d) { return d.owner !== owner; });
      others.forEach(function (d) { remove(d.token); });
      return drafts.filter(function (d) { return d.owner === owner; });
    });
  }

  function remove(token) {
    return run("readwrite", function (store) { return store.delete(token); }).catch(function () {});
  }

  function clearAll() {
    var work = [
      new Promise(function (resolve) {
        if (!window.indexedDB) { resolve(); return; }
        var request = indexedDB.deleteDatabase(DB);
        request.onsuccess = request.onerror = request.onblocked = function () { resolve(); };
      })
    ];
    if (window.caches) {
      work.push(caches.keys().then(function (keys) {
        return Promise.all(keys.map(function (key) { return caches.delete(key); }));
      }));
    }
    return Promise.all(work);
  }

  function csrfToken() {
    var match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    if (match) { return Promise.resolve(decodeURIComponent(match[1])); }
    var field = document.querySelector("input[name=csrfmiddlewaretoken]");
    return Promise.resolve(field ? field.value : "");
  }

  function formDataOf(draft, csrf) {
    var data = new FormData();
    data.append("csrfmiddlewaretoken", csrf);
    draft.fields.forEach(function (pair) { data.append(pair[0], pair[1]); });
    draft.photos.forEach(function (photo) { data.append(photo.name, photo.blob, photo.filename); });
    return data;
  }

  var sending = false;

  // Send every draft of this person; true when all went. A draft the server refuses (a field
  // to correct) is opened in the form instead.
  function sendAll(button) {
    if (sending) { return Promise.resolve(false); }
    sending = true;
    if (button) { button.disabled = true; button.textContent = "正在发送……"; }
    return Promise.all([mine(), csrfToken()]).then(function (got) {
      var drafts = got[0], csrf = got[1];
      return drafts.reduce(function (chain, draft) {
        return chain.then(function (location) {
          return fetch(draft.action, {
            method: "POST", body: formDataOf(draft, csrf), credentials: "same-origin",
            headers: { "X-Requested-With": "XMLHttpRequest" }
          }).then(function (response) {
            var next = response.headers.get("X-Location");
            if (response.ok && next) {
              return remove(draft.token).then(function () { return next; });
            }
            if (response.status >= 500) { throw new Error("server"); }
            // Refused: open it in the form to correct it.
            return draft.action + "?draft=" + encodeURIComponent(draft.token);
          });
        });
      }, Promise.resolve(null));
    }).then(function (location) {
      sending = false;
      if (location) { window.location.assign(location); }
      return true;
    }, function () {
      sending = false;
      if (button) { button.disabled = false; button.textContent = "现在发送"; }
      showBanner("还是没有网络，稍后再试。");
      return false;
    });
  }

  function showBanner(note) {
    return mine().then(function (drafts) {
      var banner = document.getElementById("draft-banner");
      if (!drafts.length) { if (banner) { banner.remove(); } return; }
      if (!banner) {
        banner = document.createElement("div");
        banner.id = "draft-banner";
        banner.className = "alert alert-warning d-flex flex-wrap align-items-center gap-2";
        banner.setAttribute("role", "status");
        var main = document.getElementById("main");
        main.insertBefore(banner, main.firstChild);
      }
      banner.innerHTML = "";
      var words = document.createElement("span");
      words.className = "flex-grow-1";
      words.textContent = "有 " + drafts.length + " 条反映还没发出去" + (note ? "。" + note : "");
      var button = document.createElement("button");
      button.type = "button";
      button.className = "btn btn-primary";
      button.textContent = "现在发送";
      button.setAttribute("data-send-drafts", "");
      button.addEventListener("click", function () { sendAll(button); });
      banner.appendChild(words);
      banner.appendChild(button);
    }).catch(function () {});
  }

  // /issues/new/?draft=<token>: the draft's text and photos back in the form.
  function restoreInto(form) {
    var token = new URLSearchParams(window.location.search).get("draft");
    if (!token) { return; }
    mine().then(function (drafts) {
      var draft = drafts.filter(function (d) { return d.token === token; })[0];
      if (!draft) { return; }
      draft.fields.forEach(function (pair) {
        var fields = form.querySelectorAll("[name='" + pair[0] + "']");
        fields.forEach(function (field) {
          if (field.type === "radio" || field.type === "checkbox") {
            field.checked = field.value === pair[1] || (field.type === "checkbox" && pair[1] === "on");
            field.dispatchEvent(new Event("change", { bubbles: true }));
          } else if (field.type !== "file") {
            field.value = pair[1];
          }
        });
      });
      if (window.IssueForm) {
        window.IssueForm.pickers(form).forEach(function (picker) {
          var name = picker.getAttribute("data-name");
          var photos = window.IssueForm.photosOf(picker);
          draft.photos.filter(function (p) { return p.name === name; }).forEach(function (p) {
            photos.push(new File([p.blob], p.filename, { type: p.blob.type }));
          });
          window.IssueForm.renderPhotos(picker, []);
        });
      }
    });
  }

  window.Drafts = {
    save: save, remove: remove, mine: mine, clearAll: clearAll, sendAll: sendAll,
    showBanner: showBanner, restoreInto: restoreInto
  };

  // Logging out clears this person's drafts and the pages kept for offline use.
  document.querySelectorAll("form[data-logout]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (form.dataset.cleared) { return; }
      event.preventDefault();
      clearAll().then(function () { form.dataset.cleared = "1"; form.submit(); });
    });
  });

  if (owner) {
    showBanner();
    window.addEventListener("online", function () { showBanner(); });
    if ("serviceWorker" in navigator) {
      navigator.serviceWorker.register("/sw.js").catch(function () {});
    }
  }
})();
