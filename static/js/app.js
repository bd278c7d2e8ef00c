// Groundwork front-end behaviour. No inline scripts: the Content-Security-Policy forbids them.
(function () {
  "use strict";

  var HEARTBEAT_MS = 15000;   // how often the page reports activity
  var ACTIVE_WINDOW_MS = 60000; // activity older than this means the trainer is away

  function csrfToken() {
    try { return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"]; } catch (e) { return ""; }
  }

  function typingInField(target) {
    if (!target || !target.tagName) return false;
    var tag = target.tagName.toLowerCase();
    if (tag === "textarea" || tag === "select" || target.isContentEditable) return true;
    return tag === "input" && ["radio", "checkbox", "button", "submit", "hidden"].indexOf(target.type) < 0;
  }

  function taskForm() { return document.getElementById("task-form"); }

  function currentQuestion(form, selector) {
    var focused = document.activeElement && document.activeElement.closest
      ? document.activeElement.closest("fieldset.question") : null;
    if (focused && (!selector || focused.matches(selector))) return focused;
    var all = Array.prototype.slice.call(form.querySelectorAll("fieldset.question" + (selector || "")));
    return all.find(function (fs) {
      return fs.querySelector("input[data-shortcut]") && !fs.querySelector("input[data-shortcut]:checked");
    }) || all.find(function (fs) { return fs.querySelector("input[data-shortcut]"); });
  }

  function choose(input) {
    if (input.type === "checkbox") input.checked = !input.checked; else input.checked = true;
    input.dispatchEvent(new Event("change", { bubbles: true }));
    input.focus({ preventScroll: true });
  }

  // After a single choice, the next digit belongs to the next question that takes digits.
  function advanceFrom(form, fieldset) {
    var all = Array.prototype.slice.call(form.querySelectorAll("fieldset.question"));
    var next = all.slice(all.indexOf(fieldset) + 1).find(function (fs) {
      return fs.querySelector("input[data-shortcut]:not([data-shortcut=''])");
    });
    if (!next) return;
    var target = next.querySelector("input:checked") || next.querySelector("input[data-shortcut]");
    target.focus({ preventScroll: false });
  }

  // --- preference: A / B / = --------------------------------------------------------------------
  function prefer(form, side) {
    var fs = currentQuestion(form, "[data-type=preference]");
    if (!fs) return false;
    var scale = parseInt(fs.getAttribute("data-scale"), 10);
    var checked = fs.querySelector("input:checked");
    var now = checked ? parseInt(checked.value, 10) : 0;
    var next;
    if (side === "=") next = 0;
    else if (side === "a") next = now < 0 ? Math.max(now - 1, -scale) : -1;
    else next = now > 0 ? Math.min(now + 1, scale) : 1;
    var input = fs.querySelector('input[value="' + next + '"]');
    if (input) choose(input);
    return true;
  }

  // --- ranking ------------------------------------------------------------------------------------
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
    var button = e.target.closest("[data-rank-action]");
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
      return;
    }
    if (e.target.closest("[data-close-dialog]")) e.target.closest("dialog").close();
  });

  // --- review: A approve, R reject (write why), C correct ---------------------------------------------
  function reviewKeys(event) {
    var review = document.querySelector("[data-testid=review]");
    if (!review || typingInField(event.target) || event.ctrlKey || event.metaKey || event.altKey) return false;
    var key = event.key.toLowerCase();
    if (key === "a") {
      review.querySelector('[data-verdict="approve"]').click();
    } else if (key === "r" || key === "c") {
      var panel = review.querySelector('[data-verdict-panel="' + (key === "r" ? "reject" : "correct") + '"]');
      panel.open = true;
      var first = panel.querySelector("textarea, input:not([type=hidden]), [tabindex]");
      if (first) first.focus();
    } else {
      return false;
    }
    event.preventDefault();
    return true;
  }

  // --- keyboard -----------------------------------------------------------------------------------
  document.addEventListener("keydown", function (event) {
    if (reviewKeys(event)) return;
    var form = taskForm();
    var dialog = document.getElementById("shortcuts-help");
    if (!form) return;
    if (dialog && dialog.open) return; // Esc closes it natively
    var target = event.target;
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      if (form.contains(target) || target === document.body || target === form) {
        event.preventDefault();
        form.requestSubmit();
      }
      return;
    }
    if (typingInField(target) || event.ctrlKey || event.metaKey) return;

    var row = target.closest ? target.closest(".rank-row") : null;
    if (row && event.altKey && (event.key === "ArrowUp" || event.key === "ArrowDown")) {
      event.preventDefault();
      moveRow(row, event.key === "ArrowUp" ? -1 : 1);
      return;
    }
    if (row && !event.altKey && (event.key === "ArrowUp" || event.key === "ArrowDown")) {
      event.preventDefault();
      var sibling = event.key === "ArrowUp" ? row.previousElementSibling : row.nextElementSibling;
      if (sibling) sibling.focus();
      return;
    }
    if (event.altKey) return;
    if (row && (event.key === "t" || event.key === "T")) { event.preventDefault(); toggleTie(row); return; }
    if (event.key === "Enter") {
      if (target.tagName && target.tagName.toLowerCase() === "button") return;
      event.preventDefault();
      form.requestSubmit();
      return;
    }
    if (event.key === "?") {
      event.preventDefault();
      if (dialog) dialog.showModal();
      return;
    }
    if (event.key === "s" || event.key === "S") {
      var skip = document.querySelector("details.skip");
      if (skip) { event.preventDefault(); skip.open = true; skip.querySelector("[data-skip-reason]").focus(); }
      return;
    }
    if (event.key === "a" || event.key === "A" || event.key === "b" || event.key === "B" || event.key === "=") {
      if (prefer(form, event.key.toLowerCase())) event.preventDefault();
      return;
    }
    if (/^[0-9]$/.test(event.key)) {
      var fs = currentQuestion(form);
      var input = fs && fs.querySelector('input[data-shortcut="' + event.key + '"]');
      if (input) {
        event.preventDefault();
        choose(input);
        if (input.type === "radio") advanceFrom(form, fs);
      }
    }
  });

  // --- text boxes: live character count -----------------------------------------------------------
  function updateCount(textarea) {
    var fs = textarea.closest("fieldset");
    var out = fs && fs.querySelector("[data-char-count]");
    if (!out) return;
    var min = parseInt(textarea.getAttribute("data-min-chars") || "0", 10);
    var n = textarea.value.trim().length;
    out.textContent = n + " characters" + (min ? " (at least " + min + ")" : "");
    out.classList.toggle("short", n < min);
  }
  document.addEventListener("input", function (e) {
    if (e.target.matches && e.target.matches("textarea[data-min-chars]")) updateCount(e.target);
  });

  // --- active time: heartbeats while visible and recently active -----------------------------------
  var lastActivity = Date.now();
  var away = false;      // true after an idle or hidden spell: the next report starts a new stretch
  var heartbeatTimer = null;
  var clockTimer = null;

  function markActive() {
    var wasAway = away || Date.now() - lastActivity > ACTIVE_WINDOW_MS;
    lastActivity = Date.now();
    if (wasAway && document.visibilityState === "visible") { away = false; sendHeartbeat(true); }
  }
  ["keydown", "mousemove", "mousedown", "scroll", "touchstart", "input"].forEach(function (name) {
    document.addEventListener(name, markActive, { passive: true, capture: true });
  });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") away = true;
    else markActive();
  });

  function showSeconds(seconds) {
    var el = document.querySelector("[data-active-time]");
    if (!el) return;
    el.setAttribute("data-seconds", seconds);
    el.textContent = Math.floor(seconds / 60) + ":" + String(seconds % 60).padStart(2, "0");
  }

  function sendHeartbeat(resume) {
    var form = taskForm();
    var url = form && form.getAttribute("data-heartbeat-url");
    if (!url) return;
    var body = new URLSearchParams();
    if (resume) body.set("resume", "1");
    fetch(url, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "Accept": "application/json" }
    }).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) return;
        showSeconds(data.active_seconds);
        if (data.status === "expired") leaseLost(form);
      })
      .catch(function () { /* offline for a moment: the next beat catches up, capped by the server */ });
  }

  // The lease lapsed while the trainer was away and the task went to someone else: say so once,
  // stop counting, and offer the next task (the answer typed so far stays on screen to copy).
  function leaseLost(form) {
    if (form.getAttribute("data-lease-lost")) return;
    form.setAttribute("data-lease-lost", "true");
    clearInterval(heartbeatTimer);
    clearInterval(clockTimer);
    var note = document.createElement("p");
    note.className = "flash flash-error";
    note.setAttribute("role", "alert");
    note.setAttribute("data-testid", "lease-lost");
    note.textContent = "Your time on this task ran out while you were away and it went to someone else. ";
    var next = document.createElement("a");
    next.href = window.location.pathname;
    next.textContent = "Go to your next task";
    note.appendChild(next);
    form.parentNode.insertBefore(note, form);
  }

  function startTask() {
    clearInterval(heartbeatTimer);
    clearInterval(clockTimer);
    if (!taskForm()) return;
    away = false;
    if (document.visibilityState === "visible") sendHeartbeat(true);
    heartbeatTimer = setInterval(function () {
      var active = Date.now() - lastActivity <= ACTIVE_WINDOW_MS;
      if (document.visibilityState !== "visible" || !active) { away = true; return; }
      if (!away) sendHeartbeat(false);
    }, HEARTBEAT_MS);
    // A local tick between beats, for the display only: the server's figure replaces it each beat.
    clockTimer = setInterval(function () {
      var el = document.querySelector("[data-active-time]");
      if (!el || away || document.visibilityState !== "visible") return;
      if (Date.now() - lastActivity > ACTIVE_WINDOW_MS) return;
      showSeconds(parseInt(el.getAttribute("data-seconds") || "0", 10) + 1);
    }, 1000);
  }

  function initTask(root) {
    initRankings(root);
    Array.prototype.forEach.call(root.querySelectorAll("textarea[data-min-chars]"), updateCount);
    startTask();
  }

  document.addEventListener("DOMContentLoaded", function () { initTask(document); });

  // After a new task is swapped in, keep the keyboard working and start its clock.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "review") {
      initRankings(event.detail.target);
      Array.prototype.forEach.call(event.detail.target.querySelectorAll("textarea[data-min-chars]"), updateCount);
      window.scrollTo({ top: 0 });
    }
    if (event.detail.target && event.detail.target.id === "task") {
      var form = taskForm();
      initTask(event.detail.target);
      if (form && !form.querySelector(".field-error")) form.focus({ preventScroll: true });
      window.scrollTo({ top: 0 });
    }
  });
})();
