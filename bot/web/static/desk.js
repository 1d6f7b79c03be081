// Progressive enhancement only: picking a canned reply fills the reply box (the form works without it).
document.addEventListener("change", function (e) {
  var t = e.target;
  if (t && t.id === "canned") {
    var opt = t.options[t.selectedIndex];
    var box = document.getElementById("reply-text");
    if (box && opt && opt.dataset.body) { box.value = opt.dataset.body; box.focus(); }
  }
});
