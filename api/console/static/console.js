// rejse console: small improvements only; every page shows its data without this file.
// A button with data-confirm asks first (the server still requires the form's CSRF token).
document.addEventListener("submit", function (event) {
  var button = event.submitter;
  var text = button && button.getAttribute("data-confirm");
  if (text && !window.confirm(text)) {
    event.preventDefault();
  }
});
