// The interview's countdown: "12:34 left", then a prompt to finish once the time box has passed.
(function () {
  "use strict";
  function tick() {
    var el = document.querySelector("[data-deadline]");
    if (!el) return;
    var left = Math.floor((Date.parse(el.getAttribute("data-deadline")) - Date.now()) / 1000);
    if (isNaN(left)) return;
    if (left <= 0) {
      el.textContent = "time is up: your next answer ends the interview";
      return;
    }
    el.textContent = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0") + " left";
  }
  document.addEventListener("DOMContentLoaded", function () {
    tick();
    setInterval(tick, 1000);
  });
  document.addEventListener("htmx:afterSwap", tick); // the next question: no flash of the raw time
})();
