// Served by the app itself (no CDN, no inline script): start Swagger UI on our OpenAPI document.
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  // validatorUrl null: never send our spec to the public validator (and no external calls).
  window.ui = SwaggerUIBundle({ url: root.dataset.spec, dom_id: "#swagger-ui", validatorUrl: null });
});
