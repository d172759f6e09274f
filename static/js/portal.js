// Portal-wide behaviour. No inline script anywhere: the CSP forbids it.
(function () {
  "use strict";
  // Buttons with data-confirm ask before submitting (htmx reads hx-confirm itself).
  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    var text = (button && button.dataset.confirm) || event.target.dataset.confirm;
    if (text && !window.confirm(text)) { event.preventDefault(); }
  });
  // A double click must not send a form twice.
  document.addEventListener("submit", function (event) {
    if (event.defaultPrevented) { return; }
    var form = event.target;
    if (form.dataset.submitted === "1") { event.preventDefault(); return; }
    form.dataset.submitted = "1";
    window.setTimeout(function () { form.dataset.submitted = ""; }, 4000);
  });
  // A refused form comes back with aria-invalid on its field (portal/web/refill.py): put the
  // cursor there, so the person corrects it without looking for it.
  function focusInvalid(root) {
    var field = root.querySelector("[aria-invalid=true]");
    if (field) { field.focus({ preventScroll: false }); }
  }
  document.addEventListener("DOMContentLoaded", function () { focusInvalid(document); });
  document.addEventListener("htmx:afterSwap", function (event) { focusInvalid(event.detail.elt || document); });
})();
