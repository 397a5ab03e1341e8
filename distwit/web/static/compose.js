// The post box's "characters left", as Twitter counts them (code points
// after NFC).  Without JavaScript the page says 140 and the server checks.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var box = document.getElementById("status");
  var left = document.getElementById("status-left");
  if (!box || !left) { return; }
  function update() {
    var n = 140 - Array.from(box.value.normalize("NFC")).length;
    left.textContent = String(n);
    left.parentNode.classList.toggle("over", n < 0);
  }
  box.addEventListener("input", update);
  update();
});
