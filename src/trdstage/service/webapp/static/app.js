// trdstage web app: the small extras JavaScript adds. Everything works without it.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  for (const button of document.querySelectorAll("button.copy[data-copy]")) {
    button.hidden = false;
    button.addEventListener("click", function () {
      const source = document.getElementById(button.dataset.copy);
      const status = button.parentElement.querySelector(".copied");
      const done = function (text) { if (status) { status.textContent = text; } };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(source.value).then(
          function () { done("Copied."); },
          function () { source.select(); done("Selected: press Ctrl+C to copy."); });
      } else {
        source.select();
        done("Selected: press Ctrl+C to copy.");
      }
    });
  }
});
