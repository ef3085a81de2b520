"""The vertexai provider end to end: a service-account key whose token endpoint is a
local server, Google's access token on every LLM request, Go's model prefix."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import openai
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from support.scripted_llm import ScriptedLLM
from yomo.zipper.bridge_config import AIConfig, AIServerConfig, BridgeConfig

from .bridge_helpers import bridge_url


class TokenServer:
    """Google's OAuth token endpoint as google-auth calls it: JWT bearer grant -> token."""

    def __init__(self) -> None:
        self.grants: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                outer.grants.append(body)
                out = json.dumps(
                    {"access_token": "ya29.scripted", "expires_in": 3600, "token_type": "Bearer"}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/token"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def service_account_key(path: Path, token_uri: str) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "p",
                "private_key_id": "k1",
                "private_key": pem,
                "client_email": "bridge@p.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": token_uri,
            }
        )
    )
    return path


async def test_vertexai_sends_googles_token_and_prefixed_model(zipper: Any, tmp_path: Path) -> None:
    tokens = TokenServer()
    try:
        with ScriptedLLM() as llm:
            settings = {
                "project_id": "p",
                "location": "us-central1",
                "credentials_file": str(service_account_key(tmp_path / "key.json", tokens.url)),
                "api_endpoint": llm.base_url,
            }
            bridge = BridgeConfig(
                ai=AIConfig(
                    server=AIServerConfig(addr="127.0.0.1:0"), providers={"vertexai": settings}
                )
            )
            z = await zipper(bridge=bridge)
            async with openai.AsyncOpenAI(base_url=bridge_url(z) + "/v1", api_key="k") as c:
                first = await c.chat.completions.create(
                    model="", messages=[{"role": "user", "content": "hi"}]
                )
                await c.chat.completions.create(
                    model="gemini-2.5-pro", messages=[{"role": "user", "content": "hi"}]
                )
    finally:
        tokens.close()
    assert first.choices[0].message.content == "hello"
    one, two = llm.requests
    assert one.headers["authorization"] == "Bearer ya29.scripted"
    assert one.body["model"] == "google/gemini-2.5-flash"  # Go's default, with Go's prefix
    assert two.body["model"] == "google/gemini-2.5-pro"
    assert len(tokens.grants) == 1  # the token is reused until it expires
    assert "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer" in tokens.grants[0]
