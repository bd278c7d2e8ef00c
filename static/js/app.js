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

  // The form the answer keys work in: the trainer's task, the written interview answer, or a reviewer's
  // open correction (the same widgets, so the same keys).
  function correctionForm() {
    var panel = document.querySelector('[data-testid=review] details[data-verdict-panel="correct"][open]');
    return panel ? panel.querySelector("form.correction") : null;
  }

  function taskForm() {
    return document.getElementById("task-form") || document.getElementById("written-form") || correctionForm();
  }

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

  // Question types add their own keys (static/js/qtypes/<type>.js): each handler gets the event, the
  // task form and the target, and returns true when it used the key.
  var typeKeys = [];
  window.Groundwork = {
    onKey: function (handler) { typeKeys.push(handler); },
    currentQuestion: currentQuestion,
    choose: choose,
  };

  document.addEventListener("click", function (e) {
    if (e.target.closest("[data-close-dialog]")) e.target.closest("dialog").close();
  });

  // --- review: A approve, R reject (write why), C correct ---------------------------------------------
  // While a verdict panel is open its own keys apply (the correction's widgets take the trainer's keys:
  // A / B prefer a side there, digits choose), never a verdict: Esc closes the panel first.
  function reviewKeys(event) {
    var review = document.querySelector("[data-testid=review]");
    if (!review || event.ctrlKey || event.metaKey || event.altKey) return false;
    var open = review.querySelector("details[data-verdict-panel][open]");
    if (event.key === "Escape" && open) {
      open.open = false;
      open.querySelector("summary").focus();
      event.preventDefault();
      return true;
    }
    if (open || typingInField(event.target)) return false;
    var key = event.key.toLowerCase();
    if (key === "a") {
      review.querySelector('[data-verdict="approve"]').click();
    } else if (key === "r" || key === "c") {
      var panel = review.querySelector('[data-verdict-panel="' + (key === "r" ? "reject" : "correct") + '"]');
      panel.open = true;
      var first = panel.querySelector("input:checked:not([type=hidden])")
        || panel.querySelector("textarea, input:not([type=hidden]), [tabindex]");
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
    // Ctrl+Enter (Cmd+Enter) in a text box of any other form sends that form: a rejection's reason, a
    // skip's reason, a written answer, a grading note — as it sends the task from anywhere in the task.
    var own = event.target.form;
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && own && own !== form
        && event.target.tagName && event.target.tagName.toLowerCase() === "textarea") {
      // with the form's own first button (a form whose buttons post elsewhere, formaction, is left alone)
      var button = own.querySelector("button[type=submit], button:not([type])");
      if (button && !button.hasAttribute("formaction")) {
        event.preventDefault();
        own.requestSubmit(button);
      }
      return;
    }
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

    for (var i = 0; i < typeKeys.length; i++) {
      if (typeKeys[i](event, form, target)) { event.preventDefault(); return; }
    }
    if (event.altKey) return;
    if (event.key === "Enter") {
      // Enter on a control does what that control does, wherever it is: a link follows, a button presses,
      // a toggle (summary) opens, a list opens; a field of another form is that form's.
      if (target.closest && target.closest("a[href], button, summary, select, [role=button], [role=link]")) return;
      if (target !== form && !form.contains(target) && target.closest && target.closest("form")) return;
      if (form.classList.contains("correction") && !form.contains(target)) return;
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
  // Counted as the server counts (bounds.shown): characters that show nothing (format characters,
  // fillers, the braille blank, variation selectors) and control characters read as spaces, every run
  // of spacing as one space, nothing at either end, in code points (an emoji is one).
  var SHOWS_NOTHING = /[\p{Cf}\p{Cc}\u034F\u115F\u1160\u17B4\u17B5\u2800\u3164\uFFA0\u180B-\u180F\uFE00-\uFE0F\u{E0100}-\u{E01EF}]/gu;
  function shownLength(text) {
    return Array.from(text.replace(SHOWS_NOTHING, " ").replace(/\s+/g, " ").trim()).length;
  }
  function updateCount(textarea) {
    var fs = textarea.closest("fieldset");
    var out = fs && fs.querySelector("[data-char-count]");
    if (!out) return;
    var min = parseInt(textarea.getAttribute("data-min-chars") || "0", 10);
    var n = shownLength(textarea.value);
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

  // Work not sent yet is not lost without a word: the task's answers as served are remembered, and
  // leaving the page (reload, a link, closing the tab) while they differ asks first. A task sent back
  // with a problem counts as changed. Sending a form (the answer, a skip) leaves without asking.
  var served = null;   // {form, state}: state null when the form came back with a problem
  var sending = false;

  function formState(form) {
    var parts = [];
    new FormData(form).forEach(function (value, key) {
      if (key !== "csrf_token") parts.push(key + "=" + (typeof value === "string" ? value : value.name));
    });
    return parts.join("&");
  }

  function rememberServed() {
    var form = document.getElementById("task-form") || document.getElementById("written-form");
    if (!form) { served = null; return; }
    served = { form: form, state: form.querySelector(".field-error, [aria-invalid=true]") ? null : formState(form) };
  }

  // Sending the task's own forms (its answer, its skip) leaves without asking; any other form (sign out,
  // a search) is leaving the task like a link.
  document.addEventListener("submit", function (event) {
    if (event.target.closest && event.target.closest("#task, #interview")) sending = true;
  }, true);
  document.addEventListener("htmx:afterRequest", function () { sending = false; });
  window.addEventListener("beforeunload", function (event) {
    if (sending || !served || !document.body.contains(served.form)) return;
    if (served.state !== null && formState(served.form) === served.state) return;
    event.preventDefault();
    event.returnValue = "";  // the browser asks "Leave site? Changes you made may not be saved."
  });

  function initTask(root) {
    Array.prototype.forEach.call(root.querySelectorAll("textarea[data-min-chars]"), updateCount);
    rememberServed();
    startTask();
  }

  document.addEventListener("DOMContentLoaded", function () { initTask(document); });

  // After a new task is swapped in, keep the keyboard working and start its clock.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "review") {
      Array.prototype.forEach.call(event.detail.target.querySelectorAll("textarea[data-min-chars]"), updateCount);
      // A verdict sent back with a problem (a rejection without its reason): its open panel's field with
      // the error takes the keys, so the reviewer types the reason and sends it again with Ctrl+Enter.
      var invalid = event.detail.target.querySelector("details[open] [aria-invalid=true]");
      if (invalid) invalid.focus({ preventScroll: true });
      window.scrollTo({ top: 0 });
    }
    if (event.detail.target && event.detail.target.id === "interview") {
      // The next interview question (or the written part): focus it, or the first error, from the top.
      var next = event.detail.target.querySelector("[aria-invalid=true], #task-form, #written-form textarea");
      if (next) next.focus({ preventScroll: true });
      rememberServed();
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
