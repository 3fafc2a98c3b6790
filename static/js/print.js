/* 打印 buttons: print the page (no inline handlers, so a strict CSP holds). */
(function () {
  "use strict";
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.addEventListener("click", function () { window.print(); });
  });
})();
