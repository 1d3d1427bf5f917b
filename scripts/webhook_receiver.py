#!/usr/bin/env python3
"""A tiny webhook receiver for trying storehook out: prints each request's headers and body and
answers 200. With WEBHOOK_SECRET=whsec_... set, it also checks the Standard Webhooks signature.

Usage: python3 scripts/webhook_receiver.py [PORT]        (default 9000; stdlib only)
"""

import base64
import hashlib
import hmac
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


def signature_valid(secret: str, headers, body: bytes) -> bool:
    key = base64.b64decode(secret.removeprefix("whsec_") + "==")
    signed = f"{headers.get('webhook-id')}.{headers.get('webhook-timestamp')}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    signatures = headers.get("webhook-signature", "").split()
    return any(
        hmac.compare_digest(s.removeprefix("v1,"), expected)
        for s in signatures
        if s.startswith("v1,")
    )


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        print(f"--- {self.command} {self.path}", flush=True)
        for name, value in self.headers.items():
            print(f"{name}: {value}")
        print()
        print(body.decode("utf-8", "replace"))
        secret = os.environ.get("WEBHOOK_SECRET")
        if secret:
            verdict = "valid" if signature_valid(secret, self.headers, body) else "INVALID"
            print(f"signature: {verdict}")
        print(flush=True)
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9000
    print(f"listening on http://127.0.0.1:{port}", flush=True)
    HTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
