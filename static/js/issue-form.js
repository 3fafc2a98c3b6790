/* 群众监督: the photo forms (filing an issue, comments and rectification reports).
 *
 * - Photos add up: the camera button and the album button each add to one list, up to nine,
 *   each with a real thumbnail and a large × to take it out again.
 * - Before sending, a large JPEG, PNG or WebP is shrunk on the phone to 2560 px at most on its
 *   longest side, upright; with the person's consent the position goes along as two fields (from
 *   the photo's EXIF before shrinking, or from the phone). HEIC goes as it is: the server
 *   converts it.
 * - Required fields are checked before anything is uploaded; a refusal, here or from the server,
 *   shows a summary at the top of the form that names each problem, links to its field and
 *   takes the focus. Nothing typed or chosen is lost, photos included.
 * - When the network fails, the issue is kept on the phone as a draft (drafts.js) and sent later
 *   with the same token, so it makes exactly one issue.
 * Without JavaScript the forms still post normally, one input at a time.
 */
(function () {
  "use strict";

  var MAX_PHOTOS = 9;
  var MAX_BYTES = 20 * 1024 * 1024;
  var MAX_SIDE = 2560;
  var QUALITY = 0.82;
  var TARGET_BYTES = 1024 * 1024;
  var SHRINKABLE = /^image\/(jpeg|png|webp)$/;

  function text(el, value) { el.textContent = value; }

  function create(tag, className, content) {
    var el = document.createElement(tag);
    if (className) { el.className = className; }
    if (content) { text(el, content); }
    return el;
  }

  function isHeic(file) {
    return /heic|heif/i.test(file.type) || /\.(heic|heif)$/i.test(file.name || "");
  }

  // --- the chosen photos ------------------------------------------------------------------------

  // Each photo field is a picker (the widget's two inputs, 拍照 and 从相册选) with its own list.
  function photosOf(picker) {
    if (!picker._photos) { picker._photos = []; }
    return picker._photos;
  }

  function pickers(form) {
    return Array.prototype.slice.call(form.querySelectorAll("[data-photo-picker]"));
  }

  // A form may take fewer (a resident's letter: three), said by data-max-photos around it.
  function maxPhotos(picker) {
    var holder = picker.closest("[data-max-photos]");
    return holder ? parseInt(holder.getAttribute("data-max-photos"), 10) || MAX_PHOTOS : MAX_PHOTOS;
  }

  // A form whose pickers share one allowance (a patrol: nine photos for all its items) says so
  // with data-max-photos-total; each picker may then take what the others leave.
  function room(picker) {
    var form = picker.closest("form");
    var total = form && parseInt(form.getAttribute("data-max-photos-total"), 10);
    if (!total) { return maxPhotos(picker); }
    var others = pickers(form).reduce(function (n, other) {
      return other === picker ? n : n + photosOf(other).length;
    }, 0);
    return Math.min(maxPhotos(picker), total - others);
  }

  // 「已选 2 张，最多 9 张」; where pickers share an allowance, every picker says what is left.
  function countAll(picker) {
    var form = picker.closest("form");
    var shared = form && form.getAttribute("data-max-photos-total");
    (shared ? pickers(form) : [picker]).forEach(function (one) {
      var count = one.querySelector("[data-photo-count]");
      if (!count) { return; }
      var n = photosOf(one).length;
      if (!shared) {
        text(count, n ? "已选 " + n + " 张，最多 " + maxPhotos(one) + " 张" : "");
        return;
      }
      var left = room(one) - n;
      text(count, n ? "已选 " + n + " 张，这次还能再选 " + left + " 张" : (left < maxPhotos(one) ? "这次还能再选 " + left + " 张" : ""));
    });
  }

  function addPhotos(picker, files) {
    var photos = photosOf(picker);
    var max = room(picker);
    var form = picker.closest("form");
    var shared = form && form.getAttribute("data-max-photos-total");
    var problems = [];
    Array.prototype.forEach.call(files, function (file) {
      if (photos.length >= max) {
        var words = shared
          ? "这次一共最多 " + shared + " 张照片，多选的没有加上。"
          : "最多 " + max + " 张照片，多选的没有加上。";
        if (problems.indexOf(words) < 0) { problems.push(words); }
        return;
      }
      if (file.size > MAX_BYTES) {
        problems.push((file.name || "照片") + "：超过 20 MB，请换一张。");
        return;
      }
      photos.push(file);
    });
    renderPhotos(picker, problems);
  }

  function renderPhotos(picker, problems) {
    var box = picker.querySelector("[data-photo-previews]");
    if (!box) { return; }
    (box._urls || []).forEach(function (url) { URL.revokeObjectURL(url); });
    box._urls = [];
    box.innerHTML = "";
    var photos = photosOf(picker);
    photos.forEach(function (file, index) {
      var figure = create("figure", "photo-tile m-0");
      if (isHeic(file)) {
        figure.appendChild(create("div", "photo-preview photo-heic", "HEIC 照片"));
      } else {
        var img = create("img", "photo-preview");
        var url = URL.createObjectURL(file);
        box._urls.push(url);
        img.src = url;
        img.alt = "已选照片 " + (index + 1);
        img.onerror = function () {
          figure.replaceChild(create("div", "photo-preview photo-heic", file.name || "照片"), img);
        };
        figure.appendChild(img);
      }
      var remove = create("button", "photo-remove", "×");
      remove.type = "button";
      remove.setAttribute("aria-label", "删除第 " + (index + 1) + " 张照片");
      remove.addEventListener("click", function () {
        photos.splice(index, 1);
        renderPhotos(picker, []);
        var next = box.querySelector(".photo-remove") || picker.querySelector("label, input");
        if (next) { next.focus(); }
      });
      figure.appendChild(remove);
      box.appendChild(figure);
    });
    countAll(picker);
    var note = picker.querySelector("[data-photo-problems]");
    if (note) {
      text(note, (problems || []).join(" "));
      // Why a photo was not added stands where she looks, not under the tab bar.
      if (problems && problems.length) { note.scrollIntoView({ block: "center", behavior: "instant" }); }
    }
    if (photos.length && picker.form) { clearFieldError(picker.form, picker.getAttribute("data-name")); }
  }

  // --- shrinking and the position ----------------------------------------------------------------

  function shrink(file) {
    if (!SHRINKABLE.test(file.type) || !window.createImageBitmap) {
      return Promise.resolve(file);
    }
    return createImageBitmap(file, { imageOrientation: "from-image" }).then(function (bitmap) {
      var side = Math.max(bitmap.width, bitmap.height);
      if (side <= MAX_SIDE && file.size <= 1024 * 1024) {
        bitmap.close();
        return file; // small already: sent as it is
      }
      var scale = Math.min(1, MAX_SIDE / side);
      var canvas = document.createElement("canvas");
      canvas.width = Math.round(bitmap.width * scale);
      canvas.height = Math.round(bitmap.height * scale);
      canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      bitmap.close();
      // A busy scene compresses less: step the quality down until the photo is under 1 MB.
      function encode(quality) {
        return new Promise(function (resolve) {
          canvas.toBlob(resolve, "image/jpeg", quality);
        }).then(function (blob) {
          if (blob && blob.size > TARGET_BYTES && quality > 0.55) { return encode(quality - 0.1); }
          return blob;
        });
      }
      return encode(QUALITY).then(function (blob) {
        if (!blob || blob.size >= file.size) { return file; }
        var name = (file.name || "photo").replace(/\.[^.]*$/, "") + ".jpg";
        return new File([blob], name, { type: "image/jpeg" });
      });
    }).catch(function () { return file; });
  }

  // The GPS position in a JPEG's EXIF (read before shrinking drops it), or null.
  function exifPosition(file) {
    if (!/jpe?g/i.test(file.type) || !file.slice) { return Promise.resolve(null); }
    return file.slice(0, 256 * 1024).arrayBuffer().then(function (buffer) {
      var view = new DataView(buffer);
      if (view.getUint16(0) !== 0xFFD8) { return null; }
      var offset = 2;
      while (offset + 4 < view.byteLength) {
        var marker = view.getUint16(offset);
        var size = view.getUint16(offset + 2);
        if (marker === 0xFFE1 && view.getUint32(offset + 4) === 0x45786966) {
          return gpsFromTiff(view, offset + 10);
        }
        offset += 2 + size;
      }
      return null;
    }).catch(function () { return null; });
  }

  function gpsFromTiff(view, tiff) {
    var little = view.getUint16(tiff) === 0x4949;
    function u16(at) { return view.getUint16(at, little); }
    function u32(at) { return view.getUint32(at, little); }
    function entries(ifd) {
      var found = {};
      var n = u16(ifd);
      for (var i = 0; i < n; i++) {
        var at = ifd + 2 + i * 12;
        found[u16(at)] = at;
      }
      return found;
    }
    var ifd0 = entries(tiff + u32(tiff + 4));
    if (!ifd0[0x8825]) { return null; }
    var gps = entries(tiff + u32(ifd0[0x8825] + 8));
    function degrees(tag) {
      if (!gps[tag]) { return null; }
      var at = tiff + u32(gps[tag] + 8);
      var parts = [0, 1, 2].map(function (i) { return u32(at + i * 8) / (u32(at + i * 8 + 4) || 1); });
      return parts[0] + parts[1] / 60 + parts[2] / 3600;
    }
    function ref(tag) { return gps[tag] ? String.fromCharCode(view.getUint8(gps[tag] + 8)) : ""; }
    var lat = degrees(2), lon = degrees(4);
    if (lat === null || lon === null) { return null; }
    if (ref(1) === "S") { lat = -lat; }
    if (ref(3) === "W") { lon = -lon; }
    return { latitude: lat.toFixed(6), longitude: lon.toFixed(6) };
  }

  function phonePosition() {
    if (!navigator.geolocation) { return Promise.resolve(null); }
    return new Promise(function (resolve) {
      navigator.geolocation.getCurrentPosition(function (where) {
        resolve({
          latitude: where.coords.latitude.toFixed(6), longitude: where.coords.longitude.toFixed(6)
        });
      }, function () { resolve(null); }, { timeout: 8000, maximumAge: 600000 });
    });
  }

  function position(form, photos) {
    var consent = form.querySelector("input[name=share_position]");
    if (!consent || !consent.checked || !form.querySelector("input[name=latitude]")) {
      return Promise.resolve(null);
    }
    return photos.reduce(function (found, file) {
      return found.then(function (where) { return where || exifPosition(file); });
    }, Promise.resolve(null)).then(function (where) { return where || phonePosition(); });
  }

  // --- 按住说话: a voice note ---------------------------------------------------------------------
  // Hold the button and speak, or tap once to start and once to stop; a minute at most.

  var VOICE_SECONDS = 60;

  function canRecord() {
    return !!(window.MediaRecorder && navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
  }

  function recordingType() {
    var types = ["audio/webm;codecs=opus", "audio/mp4", "audio/webm", "audio/ogg;codecs=opus"];
    for (var i = 0; i < types.length; i++) {
      if (MediaRecorder.isTypeSupported && MediaRecorder.isTypeSupported(types[i])) { return types[i]; }
    }
    return "";
  }

  function initRecorder(box) {
    if (box.dataset.ready) { return; }
    box.dataset.ready = "1";
    if (!canRecord()) { return; } // a phone that cannot record shows no button
    box.hidden = false;
    var button = box.querySelector("[data-voice-record]");
    var status = box.querySelector("[data-voice-status]");
    var preview = box.querySelector("[data-voice-preview]");
    var remove = box.querySelector("[data-voice-remove]");
    var recorder = null, chunks = [], started = 0, timer = null, pressedAt = 0;

    function show(file) {
      box._voice = file;
      if (preview._url) { URL.revokeObjectURL(preview._url); }
      preview._url = file ? URL.createObjectURL(file) : "";
      preview.src = preview._url;
      preview.hidden = !file;
      remove.hidden = !file;
      text(button, file ? "重新录" : "按住说话");
    }

    function stop() {
      if (recorder && recorder.state === "recording") { recorder.stop(); }
    }

    function start() {
      navigator.mediaDevices.getUserMedia({ audio: true }).then(function (stream) {
        var type = recordingType();
        recorder = type ? new MediaRecorder(stream, { mimeType: type }) : new MediaRecorder(stream);
        chunks = [];
        recorder.ondataavailable = function (e) { if (e.data && e.data.size) { chunks.push(e.data); } };
        recorder.onstop = function () {
          clearInterval(timer);
          stream.getTracks().forEach(function (track) { track.stop(); });
          button.setAttribute("aria-pressed", "false");
          button.classList.remove("recording");
          var seconds = (Date.now() - started) / 1000;
          if (seconds < 0.8 || !chunks.length) { text(status, "太短了，请按住说完再松开。"); show(box._voice || null); return; }
          var mime = recorder.mimeType || type || "audio/webm";
          var ext = /mp4/.test(mime) ? "m4a" : /ogg/.test(mime) ? "ogg" : "webm";
          show(new File(chunks, "voice." + ext, { type: mime.split(";")[0] }));
          text(status, "已录 " + Math.round(seconds) + " 秒，可以先听一遍。");
        };
        recorder.start(250);
        started = Date.now();
        button.setAttribute("aria-pressed", "true");
        button.classList.add("recording");
        text(button, "松开结束");
        timer = setInterval(function () {
          var left = VOICE_SECONDS - Math.floor((Date.now() - started) / 1000);
          text(status, "正在录音，还可以说 " + left + " 秒");
          if (left <= 0) { stop(); }
        }, 250);
      }, function () {
        text(status, "没有得到麦克风权限，可以改为打字。");
      });
    }

    button.addEventListener("pointerdown", function (event) {
      event.preventDefault();
      pressedAt = Date.now();
      if (recorder && recorder.state === "recording") { stop(); return; }
      start();
    });
    button.addEventListener("pointerup", function () {
      // Held down: releasing ends it. A quick tap leaves it recording until the next tap.
      if (Date.now() - pressedAt > 700) { stop(); }
    });
    button.addEventListener("keydown", function (event) {
      if (event.key !== "Enter" && event.key !== " ") { return; }
      event.preventDefault();
      if (recorder && recorder.state === "recording") { stop(); } else { start(); }
    });
    remove.addEventListener("click", function () { show(null); text(status, ""); button.focus(); });
    if (box._pendingVoice) { show(box._pendingVoice); box._pendingVoice = null; }
  }

  function voiceOf(form) {
    var box = form.querySelector("[data-voice-recorder]");
    return box && box._voice ? { name: box.getAttribute("data-name"), file: box._voice } : null;
  }

  // --- checking before sending -----------------------------------------------------------------

  function clearFieldError(form, name) {
    var wrapper = form.querySelector("[data-field='" + name + "']");
    if (!wrapper) { return; }
    wrapper.querySelectorAll("[data-client-error]").forEach(function (el) { el.remove(); });
    wrapper.querySelectorAll(".is-invalid").forEach(function (el) { el.classList.remove("is-invalid"); });
  }

  function problems(form) {
    var found = [];
    form.querySelectorAll("[data-required]").forEach(function (wrapper) {
      var name = wrapper.getAttribute("data-field");
      if (wrapper.hidden || wrapper.closest("[hidden]")) { return; }
      var missing;
      if (wrapper.hasAttribute("data-voice-instead") && voiceOf(form)) { return; }
      var picker = wrapper.querySelector("[data-photo-picker]");
      if (picker) {
        missing = !photosOf(picker).length;
      } else {
        var inputs = wrapper.querySelectorAll("input, select, textarea");
        var radios = wrapper.querySelectorAll("input[type=radio]");
        if (radios.length) {
          missing = !wrapper.querySelector("input[type=radio]:checked");
        } else {
          missing = !Array.prototype.some.call(inputs, function (el) { return el.value.trim(); });
        }
      }
      if (missing) { found.push({ name: name, message: wrapper.getAttribute("data-required") }); }
    });
    return found;
  }

  function fieldAnchor(form, name) {
    var wrapper = form.querySelector("[data-field='" + name + "']");
    if (!wrapper) { return null; }
    return wrapper.querySelector("input:not([type=hidden]), select, textarea, button") || wrapper;
  }

  function showSummary(form, found) {
    var summary = form.querySelector("[data-error-summary]");
    if (!summary) { return; }
    var list = summary.querySelector("ul");
    list.innerHTML = "";
    found.forEach(function (problem) {
      var item = create("li");
      var link = create("a", "", problem.message);
      var target = fieldAnchor(form, problem.name);
      link.href = "#" + (target && target.id ? target.id : "issue-form");
      link.addEventListener("click", function (event) {
        event.preventDefault();
        if (target) {
          target.scrollIntoView({ block: "center", behavior: "instant" });
          target.focus({ preventScroll: true });
        }
      });
      item.appendChild(link);
      list.appendChild(item);
      var wrapper = form.querySelector("[data-field='" + problem.name + "']");
      if (wrapper && !wrapper.querySelector("[data-client-error], .invalid-feedback")) {
        var feedback = create("div", "invalid-feedback d-block", problem.message);
        feedback.setAttribute("data-client-error", "");
        wrapper.appendChild(feedback);
      }
    });
    summary.hidden = false;
    summary.scrollIntoView({ block: "start", behavior: "instant" });
    summary.focus({ preventScroll: true });
  }

  // --- sending ---------------------------------------------------------------------------------

  function formData(form, chosen, where) {
    var data = new FormData(form);
    chosen.forEach(function (entry) { data.delete(entry.name); });
    chosen.forEach(function (entry) {
      entry.files.forEach(function (file) { data.append(entry.name, file, file.name || "photo.jpg"); });
    });
    var spoken = voiceOf(form);
    if (spoken) { data.set(spoken.name, spoken.file, spoken.file.name); }
    if (where) {
      data.set("latitude", where.latitude);
      data.set("longitude", where.longitude);
    }
    return data;
  }

  function setBusy(form, busy, message) {
    var button = form.querySelector("[data-submit]");
    var status = form.querySelector("[data-upload-status]");
    if (button) { button.disabled = busy; }
    if (status) { status.hidden = !message; text(status, message || ""); }
  }

  function keepAsDraft(form, data, message) {
    if (!window.Drafts || !form.hasAttribute("data-draft")) {
      setBusy(form, false, "网络不好，没有发送成功。您填写的内容都还在，请稍后再点一次“提交”。");
      return;
    }
    window.Drafts.save(form.action, data).then(function () {
      setBusy(form, false, message);
      window.Drafts.showBanner();
    }, function () {
      setBusy(form, false, "网络不好，没有发送成功。您填写的内容都还在，请稍后再点一次“提交”。");
    });
  }

  function upload(form, event) {
    if (!window.FormData || !window.XMLHttpRequest || !window.Promise) { return; }
    event.preventDefault();
    var found = problems(form);
    if (found.length) { showSummary(form, found); return; }
    var summary = form.querySelector("[data-error-summary]");
    if (summary) { summary.hidden = true; }
    var all = pickers(form).map(function (picker) {
      return { name: picker.getAttribute("data-name"), files: photosOf(picker).slice() };
    });
    var every = [].concat.apply([], all.map(function (entry) { return entry.files; }));
    setBusy(form, true, every.length ? "正在处理照片……" : "正在发送……");
    var shrunk = Promise.all(all.map(function (entry) {
      return Promise.all(entry.files.map(shrink)).then(function (files) {
        return { name: entry.name, files: files };
      });
    }));
    Promise.all([position(form, every), shrunk]).then(function (done) {
      var data = formData(form, done[1], done[0]);
      if (navigator.onLine === false) {
        keepAsDraft(form, data, "现在没有网络，这条反映已保存在手机上，有网络时点“现在发送”。");
        return;
      }
      send(form, data);
    });
  }

  function send(form, data) {
    var bar = form.querySelector("[data-upload-progress]");
    if (bar) { bar.hidden = false; }
    setBusy(form, true, "正在发送，请不要离开本页……");
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    xhr.upload.onprogress = function (e) {
      if (!e.lengthComputable || !bar) { return; }
      var percent = Math.round((e.loaded / e.total) * 100);
      bar.setAttribute("aria-valuenow", String(percent));
      bar.firstElementChild.style.width = percent + "%";
      if (percent >= 100) { setBusy(form, true, "已发送，正在处理照片……"); }
    };
    xhr.onload = function () {
      var location = xhr.getResponseHeader("X-Location");
      if (xhr.status < 300 && location) {
        var token = data.get("token");
        var done = window.Drafts && token ? window.Drafts.remove(token) : Promise.resolve();
        done.then(function () { window.location.assign(location); });
        return;
      }
      if (xhr.status >= 500 || xhr.status === 0) {
        if (bar) { bar.hidden = true; }
        keepAsDraft(form, data, "服务器暂时没有响应，这条反映已保存在手机上，稍后点“现在发送”。");
        return;
      }
      replacePage(form, xhr.responseText);
    };
    xhr.onerror = xhr.ontimeout = function () {
      if (bar) { bar.hidden = true; }
      keepAsDraft(form, data, "网络断了，这条反映已保存在手机上，有网络时点“现在发送”。");
    };
    xhr.send(data);
  }

  // The server asked for a correction: show its page, keep the chosen photos, and bring the
  // summary of what to correct into view.
  function replacePage(oldForm, html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var main = doc.getElementById("main");
    if (!main) { document.open(); document.write(html); document.close(); return; }
    document.getElementById("main").replaceWith(main);
    var newForm = oldForm.id ? document.getElementById(oldForm.id)
      : document.querySelector("form[action='" + oldForm.getAttribute("action") + "']");
    if (newForm) {
      pickers(oldForm).forEach(function (old) {
        var name = old.getAttribute("data-name");
        var fresh = newForm.querySelector("[data-photo-picker][data-name='" + name + "']");
        var refused = fresh && fresh.closest("[data-field]") &&
          fresh.closest("[data-field]").querySelector(".invalid-feedback:not([data-photo-problems])");
        if (fresh && !refused) { fresh._photos = photosOf(old); }
      });
      var oldVoice = oldForm.querySelector("[data-voice-recorder]");
      var newVoice = newForm.querySelector("[data-voice-recorder]");
      if (oldVoice && newVoice && oldVoice._voice) { newVoice._pendingVoice = oldVoice._voice; }
      var hint = newForm.querySelector("[data-reselect-hint]");
      if (hint) { hint.remove(); }
      var details = newForm.closest("details");
      if (details) { details.open = true; }
    }
    init(document);
    var summary = document.querySelector("[data-error-summary]:not([hidden])");
    var first = summary || document.querySelector(".is-invalid, [data-refusal], .alert-danger");
    if (first) {
      first.scrollIntoView({ block: "start", behavior: "instant" });
      if (summary) { summary.focus({ preventScroll: true }); }
    }
  }

  // --- 是不是这个问题？附议即可 (the duplicate hint) --------------------------------------------

  // Once a project and a category are chosen, and whenever they or the building change, ask for
  // the open issues like it. Their 附议即可 buttons post small forms kept just after this form
  // (forms cannot nest), so choosing one records a support instead of a new issue.
  function initSimilar(form) {
    var box = form.querySelector("[data-similar]");
    if (!box || !window.fetch || !window.DOMParser || !window.URLSearchParams) { return; }
    var forms = document.createElement("div");
    forms.hidden = true;
    form.after(forms);
    var asked = null;
    var timer = null;
    function value(name) {
      var checked = form.querySelector("input[name=" + name + "]:checked");
      if (checked) { return checked.value; }
      var field = form.querySelector("[name=" + name + "]:not([type=radio])");
      return field ? field.value.trim() : "";
    }
    function ask() {
      var project = value("project");
      var category = value("category");
      var query = project && category ? new URLSearchParams(
        { project: project, category: category, building: value("building") }).toString() : "";
      if (query === asked) { return; }
      asked = query;
      if (!query) { box.replaceChildren(); forms.replaceChildren(); return; }
      fetch(box.getAttribute("data-similar") + "?" + query, { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.text() : ""; })
        .then(function (html) {
          if (query !== asked) { return; } // a later choice is being answered
          var doc = new DOMParser().parseFromString(html, "text/html");
          forms.replaceChildren.apply(forms, doc.querySelectorAll("form[data-similar-support]"));
          box.replaceChildren.apply(box, Array.prototype.slice.call(doc.body.childNodes));
        }, function () { asked = null; }); // no signal: no hint; the form works as before
    }
    function soon() { clearTimeout(timer); timer = setTimeout(ask, 300); }
    form.addEventListener("change", function (event) {
      if (/^(project|category|building)$/.test(event.target.name || "")) { soon(); }
    });
    var building = form.querySelector("input[name=building]");
    if (building) { building.addEventListener("input", soon); }
    ask();
  }

  // --- wiring ----------------------------------------------------------------------------------

  function toggleOpinion(form) {
    var only = form.querySelectorAll("[data-opinion-only]");
    var checked = form.querySelector("input[name=category]:checked");
    var opinion = checked && checked.value === "opinion";
    only.forEach(function (el) { el.hidden = !opinion; });
    var photos = form.querySelector("[data-field=photos][data-photos-required]");
    if (photos) {
      if (opinion) { photos.removeAttribute("data-required"); } else {
        photos.setAttribute("data-required", photos.getAttribute("data-photos-required"));
      }
    }
  }

  function init(root) {
    root.querySelectorAll("form[data-upload-form]").forEach(function (form) {
      if (form.dataset.ready) { return; }
      form.dataset.ready = "1";
      form.classList.add("js-photos");
      pickers(form).forEach(function (picker) {
        picker.querySelectorAll("input[type=file]").forEach(function (input) {
          input.addEventListener("change", function () {
            addPhotos(picker, input.files || []);
            input.value = ""; // the same photo may be chosen again later; the list holds it
          });
        });
        renderPhotos(picker, []);
      });
      form.querySelectorAll("input[name=category]").forEach(function (radio) {
        radio.addEventListener("change", function () { toggleOpinion(form); });
      });
      form.querySelectorAll("[data-field] input, [data-field] textarea, [data-field] select")
        .forEach(function (el) {
          el.addEventListener("input", function () {
            clearFieldError(form, el.closest("[data-field]").getAttribute("data-field"));
          });
        });
      form.querySelectorAll("[data-voice-recorder]").forEach(initRecorder);
      toggleOpinion(form);
      initSimilar(form);
      form.addEventListener("submit", function (event) { upload(form, event); });
      // 常用回复: one tap puts the department's standard text into the form's text field.
      form.querySelectorAll("[data-insert-text]").forEach(function (button) {
        button.addEventListener("click", function () {
          var field = form.querySelector("textarea");
          if (!field) { return; }
          var insert = button.getAttribute("data-insert-text");
          field.value = field.value ? field.value.replace(/\s*$/, "") + "\n" + insert : insert;
          field.focus();
        });
      });
      if (window.Drafts && form.hasAttribute("data-draft")) { window.Drafts.restoreInto(form); }
    });
    var summary = root.querySelector("[data-error-summary]:not([hidden])");
    if (summary && !summary.dataset.shown) {
      summary.dataset.shown = "1";
      summary.scrollIntoView({ block: "start", behavior: "instant" });
      summary.focus({ preventScroll: true });
    }
  }

  window.IssueForm = { photosOf: photosOf, renderPhotos: renderPhotos, pickers: pickers };
  init(document);
})();
