// The ranking question: drag rows, or Alt+Up/Down to move the focused row, Up/Down to move focus,
// T to tie a row with the one above; the hidden input holds the groups (letters), best first.
(function () {
  "use strict";

  function rankingState(list) {
    var groups = [];
    Array.prototype.forEach.call(list.querySelectorAll(".rank-row"), function (row, index) {
      var tied = row.getAttribute("data-tied") === "true" && index > 0;
      if (tied) groups[groups.length - 1].push(row.getAttribute("data-response"));
      else groups.push([row.getAttribute("data-response")]);
    });
    return groups;
  }

  function renumber(list) {
    var position = 0;
    Array.prototype.forEach.call(list.querySelectorAll(".rank-row"), function (row, index) {
      if (index === 0) row.setAttribute("data-tied", "false");
      if (row.getAttribute("data-tied") !== "true") position += 1;
      row.querySelector(".rank-pos").textContent = position;
      var tie = row.querySelector('[data-rank-action="tie"]');
      if (tie) {
        tie.setAttribute("aria-pressed", row.getAttribute("data-tied"));
        tie.disabled = index === 0;
      }
    });
  }

  function commitRanking(list) {
    renumber(list);
    var fs = list.closest("fieldset");
    fs.querySelector("[data-ranking-value]").value = JSON.stringify(rankingState(list));
    fs.classList.add("ranked");
  }

  function moveRow(row, direction) {
    var list = row.parentElement;
    if (direction < 0 && row.previousElementSibling) list.insertBefore(row, row.previousElementSibling);
    else if (direction > 0 && row.nextElementSibling) list.insertBefore(row.nextElementSibling, row);
    else return;
    commitRanking(list);
    row.focus();
  }

  function toggleTie(row) {
    var fs = row.closest("fieldset");
    if (fs.getAttribute("data-allow-ties") !== "true" || !row.previousElementSibling) return;
    row.setAttribute("data-tied", row.getAttribute("data-tied") === "true" ? "false" : "true");
    commitRanking(row.parentElement);
  }

  function initRankings(root) {
    Array.prototype.forEach.call(root.querySelectorAll("[data-ranking]"), function (list) {
      renumber(list);
      if (list.closest("fieldset").querySelector("[data-ranking-value]").value) list.closest("fieldset").classList.add("ranked");
      var dragged = null;
      list.addEventListener("dragstart", function (e) {
        dragged = e.target.closest(".rank-row");
        if (dragged) { dragged.classList.add("dragging"); e.dataTransfer.effectAllowed = "move"; }
      });
      list.addEventListener("dragend", function () {
        if (dragged) dragged.classList.remove("dragging");
        dragged = null;
        commitRanking(list);
      });
      list.addEventListener("dragover", function (e) {
        if (!dragged) return;
        e.preventDefault();
        var over = e.target.closest(".rank-row");
        if (!over || over === dragged) return;
        var box = over.getBoundingClientRect();
        var after = e.clientY > box.top + box.height / 2;
        list.insertBefore(dragged, after ? over.nextElementSibling : over);
      });
    });
  }

  document.addEventListener("click", function (e) {
    var button = e.target.closest ? e.target.closest("[data-rank-action]") : null;
    if (button) {
      var action = button.getAttribute("data-rank-action");
      if (action === "confirm") {
        commitRanking(button.closest("fieldset").querySelector("[data-ranking]"));
        return;
      }
      var row = button.closest(".rank-row");
      if (action === "up") moveRow(row, -1);
      if (action === "down") moveRow(row, 1);
      if (action === "tie") toggleTie(row);
    }
  });


  window.Groundwork.onKey(function (event) {
    var row = event.target.closest ? event.target.closest(".rank-row") : null;
    if (!row) return false;
    if (event.key === "ArrowUp" || event.key === "ArrowDown") {
      if (event.altKey) {
        moveRow(row, event.key === "ArrowUp" ? -1 : 1);
      } else {
        var sibling = event.key === "ArrowUp" ? row.previousElementSibling : row.nextElementSibling;
        if (sibling) sibling.focus();
      }
      return true;
    }
    if (!event.altKey && (event.key === "t" || event.key === "T")) { toggleTie(row); return true; }
    return false;
  });

  document.addEventListener("DOMContentLoaded", function () { initRankings(document); });
  document.addEventListener("htmx:afterSwap", function (event) { if (event.detail.target) initRankings(event.detail.target); });
})();
