// The preference question: A / B prefer a side (press again for stronger), = about the same.
(function () {
  "use strict";
  var G = window.Groundwork;

  function prefer(form, side) {
    var fs = G.currentQuestion(form, "[data-type=preference]");
    if (!fs) return false;
    var scale = parseInt(fs.getAttribute("data-scale"), 10);
    var checked = fs.querySelector("input:checked");
    var now = checked ? parseInt(checked.value, 10) : 0;
    var next;
    if (side === "=") next = 0;
    else if (side === "a") next = now < 0 ? Math.max(now - 1, -scale) : -1;
    else next = now > 0 ? Math.min(now + 1, scale) : 1;
    var input = fs.querySelector('input[value="' + next + '"]');
    if (input) G.choose(input);
    return true;
  }

  G.onKey(function (event, form) {
    if (event.altKey) return false;
    var key = event.key.toLowerCase();
    return (key === "a" || key === "b" || key === "=") && prefer(form, key);
  });
})();
