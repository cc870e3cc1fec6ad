"""A webhook receiver that verifies every delivery with the `standardwebhooks` package (PyPI),
an implementation of the Standard Webhooks scheme independent of the server's. Appends one JSON
line per delivery to OUT: its webhook-id, event type, job id and whether the signature held.

    python webhook_receiver.py PORT SECRET OUT
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks import Webhook

port, secret, out_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
webhook = Webhook(secret)


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        headers = {key.lower(): value for key, value in self.headers.items()}
        try:
            payload = webhook.verify(body, headers)
            verified = True
        except Exception as error:  # a bad signature or timestamp: recorded, answered 400
            payload, verified = {"error": repr(error)}, False
        with open(out_path, "a", encoding="utf-8") as out:
            record = {
                "id": headers.get("webhook-id"),
                "verified": verified,
                "type": payload.get("type"),
                "jobId": (payload.get("data") or {}).get("jobId"),
            }
            out.write(json.dumps(record) + "\n")
        self.send_response(204 if verified else 400)
        self.end_headers()

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", port), Receiver).serve_forever()
