// The upload form posts with XMLHttpRequest so a large file shows its progress; the answer
// (the page with the preview) replaces the document.
(function () {
  const form = document.getElementById("upload-form");
  if (!form) return;
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const bar = document.getElementById("upload-progress");
    const pct = document.getElementById("upload-pct");
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action || window.location.pathname);
    xhr.upload.addEventListener("progress", function (e) {
      if (!e.lengthComputable) return;
      bar.hidden = false;
      bar.value = Math.round((100 * e.loaded) / e.total);
      pct.textContent = bar.value + " % uploaded";
    });
    xhr.addEventListener("load", function () {
      document.open();
      document.write(xhr.responseText);
      document.close();
    });
    xhr.send(new FormData(form));
  });
})();
