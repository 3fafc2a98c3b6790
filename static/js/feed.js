// 监督群: a poll that brings new automatic events brings their day's line again, at the top,
// with the new count (「今日系统自动督办 9 件」). Keep the newest copy of each day's line.
(function () {
  "use strict";
  function keepNewestDayLines() {
    var seen = {};
    document.querySelectorAll("#feed [data-day-group]").forEach(function (line) {
      var slot = line.getAttribute("data-day-group");
      if (seen[slot]) {
        line.remove();
      } else {
        seen[slot] = true;
      }
    });
  }
  // Right after the swap, in the same task, so that the two copies are never painted (htmx:load
  // comes only after the settle delay); and on load for whatever else brings content.
  document.addEventListener("htmx:afterSwap", keepNewestDayLines);
  document.addEventListener("htmx:load", keepNewestDayLines);
})();
