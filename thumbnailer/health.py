"""Can we use the database, the broker and storage? One bounded probe each, answering in words.

`/healthz/` asks them on every call; the startup checks (checks.py) ask them once when a
process starts. A probe returns None when its service works, else a Fault that says what is
wrong and which setting to look at, without secrets.
"""

import logging
import posixpath
import sys
import uuid
from typing import NamedTuple
from urllib.parse import urlsplit

import redis
from celery import current_app
from django.conf import DEFAULT_STORAGE_ALIAS
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.utils import load_backend
from django.http import JsonResponse
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)

# Each probe gives up after about this long: a health check or a starting process never hangs
# on a host that does not answer.
PROBE_SECONDS = 3


class Fault(NamedTuple):
    service: str  # "Database", "Broker" or "Storage"
    problem: str  # in words, naming the environment variable to look at

    def __str__(self) -> str:
        return f"{self.service}: {self.problem}"


def database_fault(database: dict | None = None) -> Fault | None:
    """Connect afresh (bounded) and run SELECT 1; `database` is a DATABASES entry, the default one if None."""
    database = database or connections[DEFAULT_DB_ALIAS].settings_dict
    options = dict(database.get("OPTIONS", {}))
    if database["ENGINE"] == "django.db.backends.postgresql":
        options["connect_timeout"] = PROBE_SECONDS  # libpq waits for ever by default
    probe = load_backend(database["ENGINE"]).DatabaseWrapper({**database, "OPTIONS": options}, "health-probe")
    try:
        with probe.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:
        return Fault("Database", _database_problem(probe, error))
    finally:
        probe.close()
    return None


def _database_problem(probe, error: Exception) -> str:
    settings = probe.settings_dict
    if probe.vendor == "sqlite":
        return f"cannot open the SQLite file {settings['NAME']}: {error} (DATABASE_URL)"
    server = f"{probe.display_name} at {settings['HOST'] or 'localhost'}:{settings['PORT'] or 'default port'}"
    # psycopg's SQLSTATE, when the server answered; none when it could not be reached.
    sqlstate = getattr(error.__cause__, "sqlstate", None)
    if sqlstate is None:
        return f"cannot reach {server} within {PROBE_SECONDS} s (DATABASE_URL)"
    if sqlstate in {"28P01", "28000"}:  # invalid_password, invalid_authorization_specification
        return f"user '{settings['USER']}' was refused by {server} (DATABASE_URL)"
    if sqlstate == "3D000":  # invalid_catalog_name
        return f"database '{settings['NAME']}' does not exist on {server} (DATABASE_URL)"
    return f"{server} answered: {str(error).splitlines()[0]} (DATABASE_URL)"


def broker_fault() -> Fault | None:
    """Open a connection to the broker, retrying once within the probe's time."""
    configured_url = current_app.conf.broker_url
    broker_url = _without_credentials(configured_url)
    try:
        with current_app.connection_for_write() as broker:
            broker.ensure_connection(max_retries=1, timeout=PROBE_SECONDS)
    except Exception as error:
        # kombu re-raises the client's error as its own; the client's is the cause.
        causes = (error, error.__cause__, error.__context__)
        if any(isinstance(cause, redis.AuthenticationError) for cause in causes):
            if not urlsplit(configured_url).password:
                return Fault("Broker", f"{broker_url} requires a password (REDIS_URL)")
            return Fault("Broker", f"the password was refused by {broker_url} (REDIS_URL)")
        if any(isinstance(cause, (redis.ConnectionError, redis.TimeoutError, OSError)) for cause in causes):
            return Fault("Broker", f"cannot reach {broker_url} within {PROBE_SECONDS} s (REDIS_URL)")
        return Fault("Broker", f"{broker_url} answered: {error} (REDIS_URL)")
    return None


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    return parts._replace(netloc=f"{host}:{parts.port}" if parts.port else host).geturl()


def storage_fault() -> Fault | None:
    """Write and delete a tiny file: a missing folder or bucket, or refused credentials, show here."""
    storage = storages[DEFAULT_STORAGE_ALIAS]
    s3 = sys.modules.get("storages.backends.s3")  # loaded only when S3 is configured: boto3 is heavy
    if s3 is not None and isinstance(storage, s3.S3Storage):
        return _s3_fault(storage)
    probe = f".healthz-{uuid.uuid4().hex}"
    try:
        storage.delete(storage.save(probe, ContentFile(b"ok")))
    except OSError as error:
        where = getattr(storage, "location", "storage")
        return Fault("Storage", f"cannot write under {where}: {error.strerror or error} (MEDIA_ROOT)")
    except Exception as error:
        return Fault("Storage", f"{type(error).__name__}: {error}")
    return None


def _s3_fault(storage) -> Fault | None:
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, NoCredentialsError
    from botocore.exceptions import ConnectionError as EndpointUnreachable

    bucket = storage.bucket_name
    # A client made like the storage's own (same session, credentials and config), but bounded
    # in time and without retries: the storage's client may retry for a minute.
    bounded = Config(
        connect_timeout=PROBE_SECONDS, read_timeout=PROBE_SECONDS, retries={"total_max_attempts": 1}
    )
    session = storage._create_session()
    try:
        client = session.client(
            "s3",
            region_name=storage.region_name,
            use_ssl=storage.use_ssl,
            endpoint_url=storage.endpoint_url,
            config=storage.client_config.merge(bounded),
            verify=storage.verify,
        )
    except ValueError:  # botocore's "Invalid endpoint: ..."
        return Fault("Storage", f"'{storage.endpoint_url}' is not a URL (AWS_S3_ENDPOINT_URL)")
    endpoint = client.meta.endpoint_url
    key = posixpath.join(storage.location, f".healthz-{uuid.uuid4().hex}")
    try:
        client.put_object(Bucket=bucket, Key=key, Body=b"ok")
        client.delete_object(Bucket=bucket, Key=key)
    except ClientError as error:
        credentials = session.get_credentials()
        access_key = credentials.access_key if credentials else ""
        return Fault("Storage", _s3_refusal(error.response.get("Error", {}), bucket, endpoint, access_key))
    except NoCredentialsError:
        return Fault(
            "Storage", "no access key is set and boto3 found none (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"
        )
    except EndpointUnreachable:
        return Fault("Storage", f"cannot reach {endpoint} within {PROBE_SECONDS} s (AWS_S3_ENDPOINT_URL)")
    except HTTPClientError:  # connected, but no answer in time or the connection closed
        return Fault("Storage", f"{endpoint} did not answer within {PROBE_SECONDS} s (AWS_S3_ENDPOINT_URL)")
    except BotoCoreError as error:
        return Fault("Storage", f"{endpoint}: {error}")
    return None


def _s3_refusal(error: dict, bucket: str, endpoint: str, access_key: str) -> str:
    """The store's refusal in words; a bare status stands in for the code when an answer has no body."""
    code = error.get("Code", "")
    if code in {"NoSuchBucket", "404"}:
        return f"bucket '{bucket}' does not exist at {endpoint} (AWS_STORAGE_BUCKET_NAME)"
    if code == "InvalidAccessKeyId":
        return f"the access key '{access_key}' is unknown at {endpoint} (AWS_ACCESS_KEY_ID)"
    if code == "SignatureDoesNotMatch":
        return f"the secret key does not match the access key '{access_key}' at {endpoint} (AWS_SECRET_ACCESS_KEY)"
    if code in {"AccessDenied", "403"}:
        return (
            f"the access key '{access_key}' may not write to bucket '{bucket}' at {endpoint}"
            " (the key's permissions, or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"
        )
    return f"bucket '{bucket}' at {endpoint} answered {code}: {error.get('Message', '')}"


def service_faults() -> list[Fault]:
    """Every configured service that cannot be used now, in words."""
    return [fault for fault in (database_fault(), broker_fault(), storage_fault()) if fault]


@require_GET
def health(request):
    """200 when web can take uploads (database, broker and storage usable), else 503."""
    faults = {"database": database_fault(), "broker": broker_fault(), "storage": storage_fault()}
    for fault in filter(None, faults.values()):
        logger.warning("health: %s", fault)
    healthy = not any(faults.values())
    body = {"status": "ok" if healthy else "unavailable"}
    body.update({name: "unreachable" if fault else "ok" for name, fault in faults.items()})
    return JsonResponse(body, status=200 if healthy else 503)
