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
})();
