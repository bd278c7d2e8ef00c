// Groundwork front-end behaviour. No inline scripts: the Content-Security-Policy forbids them.
(function () {
  "use strict";

  function typingInField(event) {
    var el = event.target;
    if (!el || !el.tagName) return false;
    var tag = el.tagName.toLowerCase();
    if (tag === "textarea" || tag === "select" || el.isContentEditable) return true;
    return tag === "input" && !["radio", "checkbox", "button", "submit"].includes(el.type);
  }

  function taskForm() {
    return document.getElementById("task-form");
  }

  // Workspace shortcuts: 1–9 pick the nth choice of the first unanswered (or focused) question;
  // Enter or Ctrl+Enter submits.
  document.addEventListener("keydown", function (event) {
    var form = taskForm();
    if (!form) return;
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey || !typingInField(event))) {
      if (event.target && event.target.tagName && event.target.tagName.toLowerCase() === "button") return;
      event.preventDefault();
      form.requestSubmit();
      return;
    }
    if (typingInField(event) || event.ctrlKey || event.metaKey || event.altKey) return;
    if (/^[1-9]$/.test(event.key)) {
      var focused = document.activeElement && document.activeElement.closest
        ? document.activeElement.closest("fieldset.question") : null;
      var fieldsets = Array.prototype.slice.call(form.querySelectorAll("fieldset.question"));
      var target = focused || fieldsets.find(function (fs) {
        return !fs.querySelector("input[data-shortcut]:checked");
      }) || fieldsets[0];
      if (!target) return;
      var input = target.querySelector('input[data-shortcut="' + event.key + '"]');
      if (input) {
        event.preventDefault();
        input.checked = true;
        input.focus();
      }
    }
  });

  // After a new task is swapped in, move focus to it so the keyboard keeps working.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "task") {
      var form = taskForm();
      var first = form && form.querySelector("input, textarea, select");
      if (first && !form.querySelector(".field-error")) { form.focus({ preventScroll: true }); }
      window.scrollTo({ top: 0 });
    }
  });
})();
