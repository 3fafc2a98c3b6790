// An issue's HEIC photos are converted by the worker after the issue is filed: until then their
// tiles say 「照片处理中」. Ask again every few seconds and show each photo as soon as it is ready,
// so nobody has to reload the page (and lose what they were typing).
(function () {
  "use strict";
  var EVERY = 4000, GIVE_UP_AFTER = 40;  // about three minutes
  var tries = 0;
  function check() {
    var waiting = document.querySelectorAll("img[data-photo-pending]");
    if (!waiting.length || ++tries > GIVE_UP_AFTER) { return; }
    var asks = Array.prototype.map.call(waiting, function (img) {
      var url = img.getAttribute("src").split("?")[0];
      return fetch(url, { method: "HEAD", credentials: "same-origin", cache: "no-store" })
        .then(function (response) {
          if (response.ok && response.headers.get("Content-Type") === "image/jpeg") {
            img.removeAttribute("data-photo-pending");
            img.src = url + "?ready=1";
          }
        }).catch(function () {});  // no signal now: try again later
    });
    Promise.all(asks).then(function () {
      if (!document.querySelector("img[data-photo-pending]")) {
        var notice = document.querySelector("[data-photos-pending]");
        if (notice) { notice.remove(); }
      } else {
        setTimeout(check, EVERY);
      }
    });
  }
  if (document.querySelector("img[data-photo-pending]")) { setTimeout(check, EVERY); }
})();
