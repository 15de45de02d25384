"""Sets up what RabbitMQ's own start cannot: the broker user other systems publish as, and
the limits of the two public request queues. Run by docker-compose (service
`rabbitmq-setup`) after the broker is healthy and before the services start; it is
idempotent, so it runs at every `up`, and changed passwords or permissions take effect.

A definitions file (`load_definitions`) cannot read the environment, and the passwords come
from .env: hence the management HTTP API, with the platform's user (RabbitMQ's default user,
an administrator).

- User `publisher` (password RABBITMQ_PUBLISHER_PASSWORD), with the permissions of
  publisher-permissions.json on the vhost: publish through the default exchange (to the
  request queues), declare `wallet_queue` and queues of its own (`publisher.*`, or
  server-named `amq.gen-*`) and read those; nothing else. No management tags.
- Policy `request-queue-limits` on `wallet.transaction-requests` and `wallet_queue`: at most
  REQUEST_QUEUE_MAX_BYTES of waiting messages; beyond, publishes are refused (negatively
  confirmed), never dropped silently. A policy, not queue arguments: `wallet_queue` must keep
  no arguments, or publishers that declare it with amqplib's defaults are refused.

Only Python's standard library: it runs in the rabbitmq:3.10-management image (which has
python3 for rabbitmqadmin). Passwords are never printed.
"""

import base64
import json
import os
import pathlib
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

API = os.environ.get("RABBITMQ_API", "http://rabbitmq:15672/api")
VHOST = urllib.parse.quote(os.environ.get("RABBITMQ_VHOST", "/"), safe="")
PUBLISHER = os.environ.get("RABBITMQ_PUBLISHER_USER", "publisher")
REQUEST_QUEUE_MAX_BYTES = 100 * 1024 * 1024
HERE = pathlib.Path(__file__).resolve().parent


def required(variable):
    value = os.environ.get(variable, "")
    if not value:
        sys.exit(f"rabbitmq-setup: {variable} is not set")
    return value


AUTHORIZATION = "Basic " + base64.b64encode(
    f"{required('RABBITMQ_USER')}:{required('RABBITMQ_PASSWORD')}".encode()
).decode()


def call(method, path, body=None):
    request = urllib.request.Request(
        f"{API}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": AUTHORIZATION, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def wait_for_api(seconds=60):
    deadline = time.monotonic() + seconds
    while True:
        try:
            call("GET", "/overview")
            return
        except (urllib.error.URLError, OSError) as error:
            if time.monotonic() > deadline:
                sys.exit(f"rabbitmq-setup: the management API does not answer: {error}")
            time.sleep(1)


def main():
    wait_for_api()
    permissions = json.loads((HERE / "publisher-permissions.json").read_text())
    call("PUT", f"/users/{PUBLISHER}",
         {"password": required("RABBITMQ_PUBLISHER_PASSWORD"), "tags": ""})
    call("PUT", f"/permissions/{VHOST}/{PUBLISHER}", permissions)
    call("PUT", f"/policies/{VHOST}/request-queue-limits", {
        "pattern": r"^(wallet\.transaction-requests|wallet_queue)$",
        "apply-to": "queues",
        "priority": 0,
        "definition": {"max-length-bytes": REQUEST_QUEUE_MAX_BYTES,
                       "overflow": "reject-publish"},
    })
    print(f"rabbitmq-setup: user {PUBLISHER} and the request queues' limits are set")


if __name__ == "__main__":
    main()
