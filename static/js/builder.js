// The question builder on the project form: add, remove and retype question rows.
(function () {
  "use strict";

  function nextIndex(container) {
    var max = -1;
    Array.prototype.forEach.call(container.querySelectorAll("[data-question-row]"), function (row) {
      max = Math.max(max, parseInt(row.getAttribute("data-n"), 10));
    });
    return max + 1;
  }

  function fetchRow(url, params) {
    return fetch(url + "?" + new URLSearchParams(params).toString(), { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.text(); });
  }

  document.addEventListener("click", function (e) {
    var add = e.target.closest("[data-add-question]");
    if (add) {
      var container = document.getElementById("questions");
      fetchRow(add.getAttribute("data-url"), { n: nextIndex(container) }).then(function (html) {
        container.insertAdjacentHTML("beforeend", html);
        var rows = container.querySelectorAll("[data-question-row]");
        rows[rows.length - 1].querySelector("input").focus();
      });
      return;
    }
    var remove = e.target.closest("[data-remove-question]");
    if (remove) remove.closest("[data-question-row]").remove();
  });

  document.addEventListener("change", function (e) {
    var select = e.target.closest("[data-question-type]");
    if (!select) return;
    var row = select.closest("[data-question-row]");
    var n = row.getAttribute("data-n");
    var value = function (field) { var el = row.querySelector('[name="q-' + n + '-' + field + '"]'); return el ? el.value : ""; };
    fetchRow(select.getAttribute("data-url"), {
      n: n, type: select.value, key: value("key"), title: value("title"), help: value("help")
    }).then(function (html) {
      row.insertAdjacentHTML("afterend", html);
      row.remove();
    });
  });
})();
