"""A local HTTP server that answers like an Azure OpenAI resource's image deployments, for tests.

Azure's manners in front of OpenAIStandIn's image engine (validation, images, usage, slow and
trickled replies, hold/release)::

    with AzureStandIn(key="k") as server:
        client = openai.AzureOpenAI(azure_endpoint=server.endpoint, api_key="k", api_version=API_VERSION)
        server.enqueue("content_filter")  # the next image call is refused by the content filter

- paths `/openai/deployments/{deployment}/images/generations` (JSON) and `/images/edits`
  (multipart), each with `?api-version=`; the key in an `api-key` header;
- `deployments` maps each deployment to the model it serves; any other deployment answers 404
  DeploymentNotFound, an unknown api-version 404 "Resource not found", a wrong key 401 "Access denied";
- a prompt holding one of `flag_words` is refused by the content filter (400), as Azure does at
  generation: there is no moderation endpoint;
- scripted Azure errors (`AZURE_BEHAVIOURS`) besides OpenAIStandIn's behaviours.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import re
import threading
from email.parser import BytesParser
from email.policy import default as email_policy
from typing import Any
from urllib.parse import parse_qs, urlsplit

from openai_standin import IMAGES_PATH, ApiError, OpenAIStandIn

API_VERSIONS = {"2025-04-01-preview", "2025-03-01-preview"}
IMAGE_PATH = re.compile(r"/openai/deployments/(?P<deployment>[^/?]+)/images/(?P<operation>generations|edits)")
DEFAULT_DEPLOYMENTS = {model: model for model in ("gpt-image-2", "gpt-image-1.5", "gpt-image-1-mini")}
ACCESS_DENIED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an "
    "active subscription and use a correct regional API endpoint for your resource."
)
NO_DEPLOYMENT = (
    "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, "
    "please wait a moment and try again."
)
FILTER_CATEGORIES = ("hate", "self_harm", "sexual", "violence")
# Scripted Azure answers -> the options enqueue() accepts.
AZURE_BEHAVIOURS: dict[str, set[str]] = {
    # shape "images" (inner_error.content_filter_results), "chat" (innererror.content_filter_result),
    # "output" (the generated image was filtered: no inner error)
    "content_filter": {"category", "shape", "message"},
    "rate_limited": {"retry_after", "message"},
    "server_error": {"status", "retry_after", "message"},
}


def _error(http: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any) -> ApiError:
    err = ApiError(http, message, None, code=code, headers=headers)
    err.body = {"error": {"code": code, "message": message, **extra}}
    return err


def _content_filter(category: str, shape: str = "images", message: str | None = None) -> ApiError:
    verdicts = {
        c: {"filtered": c == category, "severity": "medium" if c == category else "safe"} for c in FILTER_CATEGORIES
    }
    if shape == "output":
        return _error(400, "contentFilter", message or "Generated image was filtered as a result of our safety system.")
    if shape == "chat":
        text = message or (
            "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. "
            "Please modify your prompt and retry."
        )
        inner = {"code": "ResponsibleAIPolicyViolation", "content_filter_result": verdicts}
        return _error(400, "content_filter", text, param="prompt", type=None, status=400, innererror=inner)
    text = message or (
        "Your request was rejected as a result of our safety system. Your prompt may contain text that is not "
        "allowed by our safety system."
    )
    inner = {"code": "ResponsibleAIPolicyViolation", "content_filter_results": verdicts}
    return _error(
        400, "content_policy_violation", text, param="prompt", type="invalid_request_error", inner_error=inner
    )


class AzureStandIn(OpenAIStandIn):
    """Azure OpenAI image deployments on 127.0.0.1, with scripted failures and recording."""

    def __init__(self, key: str | None = None, latency: float = 0.0):
        super().__init__(latency=latency)
        self.key = key  # None: any key is accepted
        self.deployments: dict[str, str] = dict(DEFAULT_DEPLOYMENTS)
        self.api_versions = set(API_VERSIONS)
        # every request: method, path, deployment, operation, api_version, headers, fields, image
        self.azure_requests: list[dict[str, Any]] = []
        self._azure_lock = threading.Lock()
        self._apim_ids = itertools.count(1)

    @property
    def endpoint(self) -> str:
        """What AZURE_OPENAI_ENDPOINT holds: the resource's address, no path."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def image_calls(self) -> int:
        """Image requests that reached the resource, refused or not."""
        with self._azure_lock:
            return sum(r["operation"] is not None for r in self.azure_requests)

    def image_requests(self) -> list[dict[str, Any]]:
        with self._azure_lock:
            return [r for r in self.azure_requests if r["operation"] is not None]

    def enqueue(self, behaviour: str, **opts: Any) -> None:
        """Script the next image request: Azure's shapes for AZURE_BEHAVIOURS, else OpenAIStandIn's."""
        if behaviour not in AZURE_BEHAVIOURS:
            super().enqueue(behaviour, **opts)
            return
        if unknown := set(opts) - AZURE_BEHAVIOURS[behaviour]:
            raise ValueError(f"{behaviour!r} does not take {sorted(unknown)}")
        with self._lock:
            self._script.append((f"azure:{behaviour}", opts))

    # --- request handling ----------------------------------------------------------

    def _handle(self, req: Any) -> None:
        """Check Azure's path, version, key and deployment, then hand the request to OpenAIStandIn
        as the JSON image request it stands for."""
        parts = urlsplit(req.path)
        match = IMAGE_PATH.fullmatch(parts.path.rstrip("/"))
        raw = req.rfile.read(int(req.headers.get("content-length") or 0))
        key = req.headers.get("api-key", "")
        record: dict[str, Any] = {
            "method": req.command,
            "path": parts.path,
            "deployment": match["deployment"] if match else None,
            "operation": match["operation"] if match and req.command == "POST" else None,
            "api_version": (parse_qs(parts.query).get("api-version") or [None])[0],
            "headers": {k.lower(): v for k, v in req.headers.items()},
            "fields": None,
            "image": None,
        }
        with self._azure_lock:
            self.azure_requests.append(record)
        try:
            body = self._translate(record, raw, req.headers.get("content-type", ""), key)
        except ApiError as err:
            self._answer(req, err.status, err.body, err.headers)
            return
        data = json.dumps(body).encode()
        for name, value in (("authorization", f"Bearer {key}"), ("content-length", str(len(data)))):
            del req.headers[name]
            req.headers[name] = value  # the key as OpenAIStandIn reads it (its echo_key echoes it)
        socket_file, req.rfile, req.path = req.rfile, io.BytesIO(data), IMAGES_PATH
        try:
            super()._handle(req)
        finally:
            req.rfile = socket_file  # the connection stays alive for the client's next request

    def _translate(self, record: dict[str, Any], raw: bytes, content_type: str, key: str) -> dict[str, Any]:
        if record["operation"] is None or record["api_version"] not in self.api_versions:
            raise _error(404, "404", "Resource not found")
        if self.key is not None and key != self.key:
            raise _error(401, "401", ACCESS_DENIED)
        if record["deployment"] not in self.deployments:
            raise _error(404, "DeploymentNotFound", NO_DEPLOYMENT)
        if record["operation"] == "edits":
            body = self._form(record, raw, content_type)
        else:
            with contextlib.suppress(ValueError):
                body = json.loads(raw)
            body = body if isinstance(body, dict) else {}
            record["fields"] = dict(body)
        # A deployment serves one model, whatever the body names.
        return {**body, "model": self.deployments[record["deployment"]]}

    def _form(self, record: dict[str, Any], raw: bytes, content_type: str) -> dict[str, Any]:
        """An image edit's multipart form as the JSON image request it stands for."""
        if not content_type.startswith("multipart/form-data"):
            raise _error(400, "invalid_request_error", "The request must be multipart/form-data.")
        message = BytesParser(policy=email_policy).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
        fields: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name in ("image", "image[]"):
                record["image"] = part.get_payload(decode=True)
            elif name:
                fields[name] = part.get_content().strip()
        record["fields"] = fields
        if not record["image"]:
            raise _error(400, "invalid_request_error", "Missing required parameter: 'image'.", param="image")
        if "n" in fields:
            fields["n"] = int(fields["n"])
        return fields

    def _image_answer(self, behaviour: str, opts: dict[str, Any], body: Any, path: str = IMAGES_PATH):
        prompt = str(body.get("prompt", "")) if isinstance(body, dict) else ""
        if behaviour.startswith("azure:"):
            raise self._scripted(behaviour.removeprefix("azure:"), opts)
        if set(re.findall(r"[a-z]+", prompt.lower())) & {w.lower() for w in self.flag_words}:
            raise _content_filter(self.flag_category)
        answer = super()._image_answer(behaviour, opts, body, path)
        if answer is not None and answer[0] == 200 and isinstance(answer[1], dict):
            verdicts = {c: {"filtered": False, "severity": "safe"} for c in FILTER_CATEGORIES}
            for item in answer[1].get("data", []):
                item["content_filter_results"] = verdicts  # Azure annotates each image
        return answer

    def _scripted(self, behaviour: str, opts: dict[str, Any]) -> ApiError:
        if behaviour == "content_filter":
            return _content_filter(opts.get("category", "violence"), opts.get("shape", "images"), opts.get("message"))
        retry_after = str(opts.get("retry_after", "1"))
        headers = {"retry-after": retry_after} if behaviour == "rate_limited" or "retry_after" in opts else {}
        if behaviour == "rate_limited":
            message = opts.get("message") or (
                "Requests to the Images_Generations Operation under Azure OpenAI API version 2025-04-01-preview have "
                "exceeded call rate limit of your current AIServices S0 pricing tier. Please retry after "
                f"{retry_after} seconds. Please contact Azure support service if you would like to further increase "
                "the default rate limit."
            )
            return _error(429, "429", message, headers)
        message = opts.get("message") or "The server had an error while processing your request. Sorry about that!"
        return _error(int(opts.get("status", 500)), "InternalServerError", message, headers)

    def _answer(self, req: Any, status: int, payload: dict[str, Any], headers: dict[str, str]) -> None:
        """An answer Azure gives before any image work (wrong path, key or deployment)."""
        raw = json.dumps(payload).encode()
        req.send_response(status)
        reply = {
            "content-type": "application/json",
            "content-length": str(len(raw)),
            "apim-request-id": f"{next(self._apim_ids):08x}-0000-4000-8000-000000000000",
            **headers,
        }
        for name, value in reply.items():
            req.send_header(name, value)
        req.end_headers()
        req.wfile.write(raw)
