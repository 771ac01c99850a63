"""``/docs``: an interactive page for the API, served whole by this process.

Swagger UI would load its scripts from a CDN, which the machines that run the ledger cannot
reach; this page is rendered from the OpenAPI document itself, with a few lines of inline script
and no external asset: every GET endpoint gets a form (path and query parameters, the bearer
token) whose answer is shown in place. Webhook deliveries are documented, not sent from here.
"""

from __future__ import annotations

import html
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)

SCRIPT = """
document.querySelectorAll("form.call").forEach(function (form) {
  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    var path = form.dataset.path, query = new URLSearchParams();
    form.querySelectorAll("input[data-in]").forEach(function (input) {
      if (input.value === "") return;
      if (input.dataset.in === "path") path = path.replace("{" + input.name + "}",
        encodeURIComponent(input.value));
      else query.append(input.name, input.value);
    });
    var token = document.getElementById("token").value;
    var answer = form.querySelector("pre");
    var url = path + (query.toString() ? "?" + query : "");
    try {
      var response = await fetch(url, {headers: token ? {Authorization: "Bearer " + token} : {}});
      var text = await response.text();
      try { text = JSON.stringify(JSON.parse(text), null, 2); } catch (e) {}
      answer.textContent = "GET " + url + "\\n" + response.status + "\\n" + text;
    } catch (error) { answer.textContent = String(error); }
  });
});
"""

STYLE = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
section{border-top:1px solid #ccc;padding:.5rem 0}code{background:#f4f4f4;padding:0 .2rem}
label{display:inline-block;margin:.2rem .8rem .2rem 0}pre{background:#f8f8f8;overflow:auto}
"""


@router.get("/docs")
async def docs(request: Request) -> HTMLResponse:
    document: dict[str, Any] = request.app.openapi()
    return HTMLResponse(render(document))


def render(document: dict[str, Any]) -> str:
    info = document.get("info", {})
    sections = []
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            sections.append(_operation(path, method, operation))
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{_e(info.get('title', 'API'))}</title><style>{STYLE}</style></head><body>"
        f"<h1>{_e(info.get('title', 'API'))} <small>{_e(info.get('version', ''))}</small></h1>"
        f"<p>{_e(info.get('description', ''))}</p>"
        "<p>The machine-readable document: <a href='/openapi.json'>/openapi.json</a>.</p>"
        "<p><label>Read token <input id='token' type='password' autocomplete='off'></label></p>"
        + "".join(sections)
        + f"<script>{SCRIPT}</script></body></html>"
    )


def _operation(path: str, method: str, operation: dict[str, Any]) -> str:
    title = f"<h2><code>{_e(method.upper())} {_e(path)}</code></h2>"
    summary = f"<p>{_e(operation.get('summary', ''))}</p>"
    parameters = operation.get("parameters", [])
    listing = "".join(
        f"<li><code>{_e(p['name'])}</code> ({_e(p['in'])}"
        f"{', required' if p.get('required') else ''}): {_e(p.get('description', ''))}</li>"
        for p in parameters
    )
    answers = ", ".join(_e(str(code)) for code in operation.get("responses", {}))
    body = f"<ul>{listing}</ul>" if listing else ""
    body += f"<p>Answers: {answers}</p>"
    if method == "get":
        inputs = "".join(
            f"<label>{_e(p['name'])} <input name='{_e(p['name'])}' data-in='{_e(p['in'])}'"
            f"{' required' if p.get('required') else ''}></label>"
            for p in parameters
        )
        body += (
            f"<form class='call' data-path='{_e(path)}'>{inputs}"
            "<button type='submit'>Send</button><pre></pre></form>"
        )
    elif "requestBody" in operation:
        examples = (
            operation["requestBody"].get("content", {}).get("application/json", {}).get("examples")
        )
        if examples:
            first = next(iter(examples.values())).get("value")
            body += f"<p>Example body:</p><pre>{_e(json.dumps(first, indent=2))}</pre>"
    return f"<section>{title}{summary}{body}</section>"


def _e(text: str) -> str:
    return html.escape(text, quote=True)
