// The dashboard's script editor, an enhancement only: without it the textareas work as they are.
// It keeps the line-number gutter in step with the text, grows the textarea with it (so that the
// editor's frame, not the textarea, scrolls and the numbers stay beside their lines) and makes Tab
// indent. Escape, then Tab, leaves the editor, so the keyboard is never trapped.
(function () {
  "use strict";
  var INDENT = "    ";

  function enhance(editor) {
    var textarea = editor.querySelector("textarea");
    var gutter = editor.querySelector(".gutter");
    if (!textarea || !gutter) { return; }
    var shown = -1;
    var leaving = false;

    function refresh() {
      var lines = textarea.value.split("\n").length;
      if (lines !== shown) {
        var numbers = [];
        for (var n = 1; n <= lines; n += 1) { numbers.push(String(n)); }
        gutter.textContent = numbers.join("\n");  // an edit moves lines: the error's mark no longer fits
        textarea.rows = lines + 1;
        shown = lines;
      }
      gutter.scrollTop = textarea.scrollTop;
    }

    textarea.addEventListener("input", refresh);
    textarea.addEventListener("scroll", function () { gutter.scrollTop = textarea.scrollTop; });
    textarea.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { leaving = true; return; }
      if (event.key !== "Tab" || event.shiftKey || event.altKey || event.ctrlKey || event.metaKey ||
          textarea.readOnly || leaving) {
        leaving = false;
        return;
      }
      event.preventDefault();
      textarea.setRangeText(INDENT, textarea.selectionStart, textarea.selectionEnd, "end");
      refresh();
    });
    textarea.addEventListener("blur", function () { leaving = false; });
    var hint = document.createElement("p");
    hint.className = "hint";
    hint.textContent = "Tab indents; press Escape, then Tab, to leave the editor.";
    editor.parentNode.insertBefore(hint, editor.nextSibling);
    editor.setAttribute("data-enhanced", "");
    shown = Number(textarea.rows) - 1;  // the page's own gutter is right until the text changes
    refresh();
  }

  Array.prototype.forEach.call(document.querySelectorAll(".editor"), enhance);
}());
