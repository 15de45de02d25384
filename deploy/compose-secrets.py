"""Makes every secret docker compose needs, so that `docker compose up` works on a fresh clone
with no .env to write. Run by the one-shot compose service `secrets` before anything else
starts, at every `up`: it writes into the `secrets` volume (mounted at /secrets here and at
/run/secrets, read-only, in the other containers):

- each secret value, generated at the first start and kept afterwards, unless the variable
  of the same name is set (in .env or the shell), which then wins: INTERNAL_API_TOKEN,
  AUTH_KEY_ENCRYPTION_KEY, POSTGRES_PASSWORD, the four *_DATABASE_PASSWORD,
  RABBITMQ_PASSWORD (the platform's broker user) and RABBITMQ_PUBLISHER_PASSWORD;
- what the programs read through their *_FILE variables: the database URLs and AMQP_URL,
  with the passwords in them;
- rabbitmq-definitions.json, which RabbitMQ loads at boot (deploy/rabbitmq/rabbitmq.conf):
  the vhost, the two broker users of the trust boundary (`platform`, an administrator, and
  `publisher`, with deploy/rabbitmq/publisher-permissions.json) and the request queues'
  limits.

Only Python's standard library: it runs in the rabbitmq:3.10-management image (which has
python3 for rabbitmqadmin). Values are never printed.
"""

import base64
import hashlib
import json
import os
import pathlib
import secrets

OUT = pathlib.Path(os.environ.get("SECRETS_DIR", "/secrets"))
HERE = pathlib.Path(__file__).resolve().parent
# Past this many bytes of waiting messages, publishes to a request queue are refused (a
# negative confirm), never dropped: a policy, since wallet_queue must keep no arguments.
REQUEST_QUEUE_MAX_BYTES = 100 * 1024 * 1024
DATABASES = {"auth": "AUTH", "wallet": "WALLET", "statement": "STATEMENT", "orders": "ORDER"}


def kept(name, variable, generate):
    """The value of `variable` if set, else the one kept in the file `name`, else a new one."""
    path = OUT / name
    value = os.environ.get(variable, "").strip()
    if not value and path.exists():
        value = path.read_text().strip()
    if not value:
        value = generate()
    write(name, value)
    return value


def write(name, value):
    path = OUT / name
    temporary = path.with_suffix(".tmp")
    temporary.write_text(value + "\n")
    # Readable by the programs' users in the other containers (10001, postgres, rabbitmq);
    # only this project's containers mount the volume.
    temporary.chmod(0o444)
    temporary.replace(path)


def password():
    # URL-safe, since the passwords go into URLs.
    return secrets.token_hex(24)


def rabbit_hash(value):
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt + sha256(salt + password))."""
    salt = secrets.token_bytes(4)
    return base64.b64encode(salt + hashlib.sha256(salt + value.encode()).digest()).decode()


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    kept("internal-api-token", "INTERNAL_API_TOKEN", lambda: secrets.token_hex(32))
    kept("auth-key-encryption-key", "AUTH_KEY_ENCRYPTION_KEY", lambda: secrets.token_hex(32))
    kept("postgres-password", "POSTGRES_PASSWORD", password)
    for database, prefix in DATABASES.items():
        role_password = kept(f"{database}-database-password", f"{prefix}_DATABASE_PASSWORD", password)
        write(f"{database}-database-url",
              f"postgres://{database}:{role_password}@postgres:5432/{database}")

    platform = kept("rabbitmq-password", "RABBITMQ_PASSWORD", password)
    publisher = kept("rabbitmq-publisher-password", "RABBITMQ_PUBLISHER_PASSWORD", password)
    write("amqp-url", f"amqp://platform:{platform}@rabbitmq:5672/%2f")
    permissions = json.loads((HERE / "rabbitmq" / "publisher-permissions.json").read_text())
    user = lambda name, value, tags: {
        "name": name,
        "password_hash": rabbit_hash(value),
        "hashing_algorithm": "rabbit_password_hashing_sha256",
        "tags": tags,
    }
    definitions = {
        "users": [user("platform", platform, "administrator"), user("publisher", publisher, "")],
        "vhosts": [{"name": "/"}],
        "permissions": [
            {"user": "platform", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"},
            {"user": "publisher", "vhost": "/", **permissions},
        ],
        "policies": [{
            "vhost": "/",
            "name": "request-queue-limits",
            "pattern": r"^(wallet\.transaction-requests|wallet_queue)$",
            "apply-to": "queues",
            "priority": 0,
            "definition": {"max-length-bytes": REQUEST_QUEUE_MAX_BYTES,
                           "overflow": "reject-publish"},
        }],
    }
    write("rabbitmq-definitions.json", json.dumps(definitions, indent=2))
    print(f"secrets: ready in the secrets volume ({len(list(OUT.iterdir()))} files)")


if __name__ == "__main__":
    main()
