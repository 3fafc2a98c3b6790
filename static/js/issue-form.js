/* 群众监督: photo forms — previews before sending, a progress bar while uploading on a slow
 * network, and nothing the person typed or chose is lost when the server asks for a correction.
 * Without JavaScript the forms still post normally. */
(function () {
  "use strict";

  var MAX_PHOTOS = 9;
  var MAX_BYTES = 20 * 1024 * 1024;

  function text(el, value) { el.textContent = value; }

  function showPreviews(input) {
    var form = input.form;
    var box = form.querySelector("[data-photo-previews]");
    if (!box) { return; }
    box.innerHTML = "";
    // New files chosen: the server's complaint about the old ones no longer applies.
    input.classList.remove("is-invalid");
    var wrapper = input.closest(".mb-3");
    if (wrapper) {
      wrapper.querySelectorAll(".invalid-feedback:not([data-photo-problems])").forEach(function (el) {
        el.remove();
      });
    }
    var files = Array.prototype.slice.call(input.files || []);
    var problems = [];
    if (files.length > MAX_PHOTOS) {
      problems.push("一次最多上传 " + MAX_PHOTOS + " 张照片，您选了 " + files.length + " 张。");
    }
    files.forEach(function (file) {
      if (file.size > MAX_BYTES) { problems.push(file.name + "：文件超过 20 MB，请压缩后再传"); }
      var figure = document.createElement("figure");
      figure.className = "m-0 text-center";
      var img = document.createElement("img");
      img.className = "photo-preview";
      img.alt = file.name;
      img.src = URL.createObjectURL(file);
      // HEIC cannot be shown by most browsers: show its name instead; the server converts it.
      img.onerror = function () {
        var label = document.createElement("div");
        label.className = "photo-preview d-flex align-items-center justify-content-center small p-1";
        text(label, file.name);
        figure.replaceChild(label, img);
      };
      figure.appendChild(img);
      box.appendChild(figure);
    });
    var note = form.querySelector("[data-photo-problems]");
    if (!note) {
      note = document.createElement("div");
      note.className = "invalid-feedback d-block";
      note.setAttribute("data-photo-problems", "");
      box.parentNode.insertBefore(note, box);
    }
    text(note, problems.join("；"));
    input.setCustomValidity(problems.length ? problems.join("；") : "");
  }

  function toggleOpinion(form) {
    var only = form.querySelectorAll("[data-opinion-only]");
    if (!only.length) { return; }
    var checked = form.querySelector("input[name=category]:checked");
    var opinion = checked && checked.value === "opinion";
    only.forEach(function (el) { el.hidden = !opinion; });
  }

  function upload(form, event) {
    var input = form.querySelector("[data-photo-input]");
    if (!window.FormData || !window.XMLHttpRequest || !input || !input.files.length) {
      return; // nothing to upload: let the browser post the form
    }
    event.preventDefault();
    var bar = form.querySelector("[data-upload-progress]");
    var status = form.querySelector("[data-upload-status]");
    var button = form.querySelector("[data-submit]");
    if (button) { button.disabled = true; }
    if (bar) { bar.hidden = false; }
    if (status) { status.hidden = false; text(status, "正在上传照片，请不要离开本页……"); }
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    xhr.upload.onprogress = function (e) {
      if (!e.lengthComputable || !bar) { return; }
      var percent = Math.round((e.loaded / e.total) * 100);
      bar.setAttribute("aria-valuenow", String(percent));
      bar.firstElementChild.style.width = percent + "%";
      if (status && percent >= 100) { text(status, "上传完成，正在处理照片……"); }
    };
    xhr.onload = function () {
      var location = xhr.getResponseHeader("X-Location");
      if (xhr.status < 300 && location) { window.location.assign(location); return; }
      replacePage(form, input, xhr.responseText);
    };
    xhr.onerror = xhr.ontimeout = function () {
      if (button) { button.disabled = false; }
      if (bar) { bar.hidden = true; }
      if (status) { text(status, "网络不好，没有发送成功。您填写的内容都还在，请稍后再点一次“提交”。"); }
    };
    xhr.send(new FormData(form));
  }

  // The server answered with the page and its messages: show it, keeping the chosen photos
  // unless the photos themselves were the problem.
  function replacePage(oldForm, oldInput, html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var main = doc.getElementById("main");
    if (!main) { document.open(); document.write(html); document.close(); return; }
    document.getElementById("main").replaceWith(main);
    var newForm = oldForm.id ? document.getElementById(oldForm.id)
      : document.querySelector("form[action='" + oldForm.getAttribute("action") + "']");
    if (newForm) {
      var newInput = newForm.querySelector("[data-photo-input]");
      if (newInput && !newInput.classList.contains("is-invalid")) {
        newInput.replaceWith(oldInput);
        var hint = newForm.querySelector("[data-reselect-hint]");
        if (hint) { hint.remove(); }
      }
      var details = newForm.closest("details");
      if (details) { details.open = true; }
    }
    init(document);
    var first = document.querySelector(".is-invalid, [data-refusal], .alert-danger");
    if (first) { first.scrollIntoView({ block: "center" }); }
  }

  function init(root) {
    root.querySelectorAll("form[data-upload-form]").forEach(function (form) {
      if (form.dataset.ready) { return; }
      form.dataset.ready = "1";
      var input = form.querySelector("[data-photo-input]");
      if (input) {
        input.addEventListener("change", function () { showPreviews(input); });
        if (input.files && input.files.length) { showPreviews(input); }
      }
      form.querySelectorAll("input[name=category]").forEach(function (radio) {
        radio.addEventListener("change", function () { toggleOpinion(form); });
      });
      toggleOpinion(form);
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
    });
  }

  init(document);
})();
