// The span question: select text in a response, press 1–9 (or click a category) to mark it.
// Offsets count characters (code points) of the response text as stored, which the page carries
// as JSON in data-text; the hidden input holds the spans as JSON, responses named by letter.
(function () {
  "use strict";

  var lastSelection = null; // {box, start, end}: kept so a click on a category still sees it

  function chars(text) { return Array.from(text); }

  function offsetIn(box, node, offset) {
    var range = document.createRange();
    range.setStart(box, 0);
    range.setEnd(node, offset);
    return chars(range.toString()).length;
  }

  function boxOf(node) {
    var element = node.nodeType === 1 ? node : node.parentElement;
    return element ? element.closest("[data-span-text]") : null;
  }

  function selectionIn(root) {
    var sel = window.getSelection();
    if (!sel || sel.rangeCount === 0 || sel.isCollapsed) return null;
    var range = sel.getRangeAt(0);
    var box = boxOf(range.startContainer) || boxOf(range.endContainer);
    if (!box || (root && !root.contains(box))) return null;
    // A selection that runs past the text (dragged beyond its box) is cut to the text.
    var length = chars(JSON.parse(box.getAttribute("data-text"))).length;
    var start = box.contains(range.startContainer) ? offsetIn(box, range.startContainer, range.startOffset) : 0;
    var end = box.contains(range.endContainer) ? offsetIn(box, range.endContainer, range.endOffset) : length;
    start = Math.min(start, length);
    end = Math.min(end, length);
    return end > start ? { box: box, start: start, end: end } : null;
  }

  function state(fs) {
    var input = fs.querySelector("[data-span-value]");
    try { var spans = JSON.parse(input.value || "[]"); return Array.isArray(spans) ? spans : []; }
    catch (e) { return []; }
  }

  function save(fs, spans) {
    spans.sort(function (a, b) {
      return a.response < b.response ? -1 : a.response > b.response ? 1 : a.start - b.start || a.end - b.end;
    });
    fs.querySelector("[data-span-value]").value = JSON.stringify(spans);
    render(fs);
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function render(fs) {
    var spans = state(fs);
    fs.querySelectorAll("[data-span-response]").forEach(function (block) {
      var letter = block.getAttribute("data-span-response");
      var box = block.querySelector("[data-span-text]");
      var text = chars(JSON.parse(box.getAttribute("data-text")));
      var mine = spans.filter(function (s) { return s.response === letter; });
      var cuts = [0, text.length];
      mine.forEach(function (s) { cuts.push(s.start, s.end); });
      cuts = cuts.filter(function (c, i) { return cuts.indexOf(c) === i && c >= 0 && c <= text.length; })
        .sort(function (a, b) { return a - b; });
      box.textContent = "";
      for (var i = 0; i + 1 < cuts.length; i++) {
        var from = cuts[i], to = cuts[i + 1];
        var covering = mine.filter(function (s) { return s.start <= from && s.end >= to; });
        var piece = text.slice(from, to).join("");
        if (covering.length) {
          var mark = el("mark", "span-mark", piece);
          mark.title = covering.map(function (s) { return s.label; }).join(", ");
          box.appendChild(mark);
        } else {
          box.appendChild(document.createTextNode(piece));
        }
      }
      var list = block.querySelector("[data-span-list]");
      list.textContent = "";
      mine.forEach(function (s) {
        var item = el("li", "span-item");
        item.appendChild(el("span", "span-tag", s.label));
        item.appendChild(el("q", "span-quote", text.slice(s.start, s.end).join("").slice(0, 120)));
        var comment = el("input", "span-comment");
        comment.type = "text";
        comment.maxLength = 500;
        comment.placeholder = "comment (optional)";
        comment.value = s.comment || "";
        comment.setAttribute("aria-label", "Comment on " + s.label + " span");
        comment.addEventListener("change", function () {
          var all = state(fs);
          all.forEach(function (x) {
            if (x.response === s.response && x.start === s.start && x.end === s.end && x.label === s.label) x.comment = comment.value;
          });
          fs.querySelector("[data-span-value]").value = JSON.stringify(all);
        });
        var remove = el("button", "outline secondary small", "Remove");
        remove.type = "button";
        remove.setAttribute("data-span-remove", "");
        remove.addEventListener("click", function () {
          save(fs, state(fs).filter(function (x) {
            return !(x.response === s.response && x.start === s.start && x.end === s.end && x.label === s.label);
          }));
        });
        item.appendChild(comment);
        item.appendChild(remove);
        list.appendChild(item);
      });
    });
  }

  function mark(fs, number, picked) {
    var labels = JSON.parse(fs.getAttribute("data-labels"));
    var label = labels[number - 1];
    if (!label || !picked) return false;
    var letter = picked.box.closest("[data-span-response]").getAttribute("data-span-response");
    var spans = state(fs);
    var same = spans.some(function (s) {
      return s.response === letter && s.start === picked.start && s.end === picked.end && s.label === label;
    });
    if (!same) spans.push({ response: letter, start: picked.start, end: picked.end, label: label, comment: "" });
    window.getSelection().removeAllRanges();
    lastSelection = null;
    save(fs, spans);
    return true;
  }

  function setUp(root) {
    (root || document).querySelectorAll("fieldset[data-type=span]").forEach(render);
  }

  document.addEventListener("selectionchange", function () {
    var picked = selectionIn(null);
    if (picked) lastSelection = picked;
  });
  // A press anywhere but on a category forgets the kept selection, so a later click never marks a stale one.
  document.addEventListener("mousedown", function (event) {
    if (!(event.target.closest && event.target.closest("[data-span-label]"))) lastSelection = null;
  });

  // Capture phase: a digit with text selected in a span question marks it, before other shortcuts see it.
  document.addEventListener("keydown", function (event) {
    if (!/^[1-9]$/.test(event.key) || event.ctrlKey || event.metaKey || event.altKey) return;
    var tag = event.target && event.target.tagName ? event.target.tagName.toLowerCase() : "";
    if (tag === "input" || tag === "textarea" || tag === "select" || event.target.isContentEditable) return;
    var picked = selectionIn(null);
    if (!picked) return;
    var fs = picked.box.closest("fieldset[data-type=span]");
    if (fs && mark(fs, parseInt(event.key, 10), picked)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-span-label]") : null;
    if (!button) return;
    var fs = button.closest("fieldset[data-type=span]");
    var picked = selectionIn(fs) || (lastSelection && fs.contains(lastSelection.box) ? lastSelection : null);
    mark(fs, parseInt(button.getAttribute("data-span-label"), 10), picked);
  });

  document.addEventListener("DOMContentLoaded", function () { setUp(document); });
  document.addEventListener("htmx:afterSwap", function (event) { setUp(event.target); });
})();
