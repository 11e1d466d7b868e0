"""Prepared statements return and change what the ORM would, from SQL the ORM compiled once."""

import itertools
import uuid
from datetime import timedelta

import pytest
from django.db import IntegrityError, NotSupportedError, connection, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from thumbnailer import prepared
from thumbnailer.models import Job
from thumbnailer.prepared import PreparedSelect, PreparedUpdate

from .support.jobs import make_job

pytestmark = pytest.mark.django_db


def field_values(job: Job) -> dict:
    return {field.attname: getattr(job, field.attname) for field in Job._meta.concrete_fields}


def test_a_row_reads_exactly_as_the_orm_reads_it():
    now = timezone.now()
    earlier = make_job(status=Job.Status.SUCCESS, finished_at=now)
    job = make_job(
        status=Job.Status.SUCCESS,
        focus=[0.25, 0.75],
        quality=80,
        thumbnails=[{"size": "128x128", "path": "jobs/x/a.jpg", "width": 128, "height": 96, "bytes": 4711}],
        archive_path="jobs/x/Holiday_photo.zip",
        archive_bytes=123_456,
        repeat_of=earlier,
        sent_at=now - timedelta(seconds=3),
        started_at=now - timedelta(seconds=2),
        lease_expires_at=now + timedelta(minutes=5),
        finished_at=now,
        processing_ms=812,
    )
    by_id = PreparedSelect(Job.objects.order_by(), "id")

    prepared = by_id.first(id=job.id)
    expected = Job.objects.get(id=job.id)

    assert field_values(prepared) == field_values(expected)
    assert isinstance(prepared.id, uuid.UUID) and prepared.finished_at.tzinfo is not None
    assert prepared.thumbnails[0]["width"] == 128 and prepared.focus == [0.25, 0.75]
    assert prepared.repeat_of == earlier
    assert prepared._state.adding is False and prepared._state.db == "default"


def test_it_runs_the_orms_own_sql_once_compiled_and_one_statement_each_time():
    job = make_job()
    by_id = PreparedSelect(Job.objects.order_by(), "id")
    by_id.first(id=job.id)  # compiles

    with CaptureQueriesContext(connection) as queries:
        assert by_id.first(id=job.id).id == job.id
        assert by_id.first(id=uuid.uuid4()) is None

    orm_sql = str(Job.objects.order_by().filter(id=job.id).query).split(" WHERE ")[0]
    assert len(queries) == 2
    assert all(query["sql"].split(" WHERE ")[0] == orm_sql for query in queries)


def test_values_fill_the_parameters_positions_whatever_they_equal():
    """A value equal to one of the statement's own constants goes to its parameter, not theirs."""
    make_job(status=Job.Status.SUCCESS, sha256="SUCCESS", options_key="sizes=128x128")
    make_job(status=Job.Status.PENDING, sha256="c" * 64, options_key="SUCCESS")
    source = PreparedSelect(
        Job.objects.filter(status=Job.Status.SUCCESS, expired_at__isnull=True).order_by(),
        "sha256",
        "options_key",
        limit=1,
    )

    assert source.first(sha256="SUCCESS", options_key="sizes=128x128").sha256 == "SUCCESS"
    assert source.first(sha256="c" * 64, options_key="SUCCESS") is None  # not a SUCCESS job
    assert source.first(sha256="sizes=128x128", options_key="SUCCESS") is None


def test_the_fixed_conditions_order_and_limit_apply():
    for number in range(3):
        make_job(status=Job.Status.SUCCESS, stem=f"stem{number}")
    make_job(status=Job.Status.SUCCESS, expired_at=timezone.now())
    same_bytes = PreparedSelect(
        Job.objects.filter(expired_at__isnull=True).order_by("stem"), "sha256", limit=2
    )

    assert [job.stem for job in same_bytes.fetch(sha256="ab" * 32)] == ["stem0", "stem1"]


def test_a_read_row_saves_as_an_update_of_itself():
    job = make_job()
    read = PreparedSelect(Job.objects.order_by(), "id").first(id=job.id)

    read.error_message = "changed"
    read.save(update_fields=["error_message"])

    assert Job.objects.count() == 1
    assert Job.objects.get(id=job.id).error_message == "changed"


def test_wrong_uses_are_refused_in_words():
    by_id = PreparedSelect(Job.objects.all(), "id")
    with pytest.raises(TypeError, match=r"expected values for \['id'\], got \['pk'\]"):
        by_id.fetch(pk=uuid.uuid4())
    with pytest.raises(TypeError, match="cannot take ForeignKey 'repeat_of' as a parameter"):
        PreparedSelect(Job.objects.all(), "repeat_of")
    with pytest.raises(ValueError, match="plain model rows"):
        PreparedSelect(Job.objects.select_related("repeat_of"), "id")
    with pytest.raises(ValueError, match="plain model rows"):
        PreparedSelect(Job.objects.only("id"), "id")
    with pytest.raises(ValueError, match="give limit= instead"):
        PreparedSelect(Job.objects.all()[:1], "id")


LEASE_FIELD = Job._meta.get_field("lease_expires_at")

# The shape of the worker's claim: an OR of conditions, an F() increment, a Coalesce with a value.
CLAIM_LIKE = PreparedUpdate(
    lambda job_id, now, lease_end: (
        Job.objects.filter(
            Q(status=Job.Status.PENDING) | Q(status=Job.Status.STARTED, lease_expires_at__lt=now),
            id=job_id,
            expired_at__isnull=True,
        ),
        {
            "status": Job.Status.STARTED,
            "deliveries": F("deliveries") + 1,
            "lease_expires_at": lease_end,
            "started_at": Coalesce(F("started_at"), Value(now, output_field=LEASE_FIELD)),
        },
    ),
    model=Job,
    returning=True,
    job_id=Job._meta.pk,
    now=LEASE_FIELD,
    lease_end=LEASE_FIELD,
)


def test_an_update_returns_each_row_as_it_left_it():
    job = make_job()
    now = timezone.now()

    [claimed] = CLAIM_LIKE.run(job_id=job.id, now=now, lease_end=now + timedelta(minutes=2))

    assert field_values(claimed) == field_values(Job.objects.get(id=job.id))
    assert (claimed.status, claimed.deliveries) == (Job.Status.STARTED, 1)
    assert (claimed.started_at, claimed.lease_expires_at) == (now, now + timedelta(minutes=2))


def test_an_update_changes_only_the_rows_its_values_select():
    job, other = make_job(), make_job()
    now = timezone.now()
    CLAIM_LIKE.run(job_id=job.id, now=now, lease_end=now + timedelta(minutes=2))

    # Its lease runs until now + 2 min: not claimable before, claimable after.
    assert CLAIM_LIKE.run(job_id=job.id, now=now + timedelta(minutes=1), lease_end=now) == []
    later = now + timedelta(minutes=3)
    [again] = CLAIM_LIKE.run(job_id=job.id, now=later, lease_end=later + timedelta(minutes=2))

    assert (again.deliveries, again.started_at, again.lease_expires_at) == (
        2,
        now,
        later + timedelta(minutes=2),
    )
    assert Job.objects.get(id=other.id).deliveries == 0
    assert CLAIM_LIKE.run(job_id=uuid.uuid4(), now=now, lease_end=now) == []


def test_an_update_runs_the_orms_sql_and_returns_in_the_same_statement():
    job = make_job()
    now = timezone.now()
    CLAIM_LIKE.run(job_id=job.id, now=now, lease_end=now)

    with CaptureQueriesContext(connection) as queries:
        CLAIM_LIKE.run(job_id=job.id, now=now, lease_end=now)

    [query] = queries
    assert query["sql"].startswith('UPDATE "thumbnailer_job" SET "status" = ')
    assert ' RETURNING "id", "owner_key", ' in query["sql"]


def test_an_update_it_cannot_prepare_is_refused_in_words():
    ordered = PreparedUpdate(
        lambda job_id: (Job.objects.filter(id=job_id).order_by("created_at"), {"error_code": "x"}),
        model=Job,
        job_id=Job._meta.pk,
    )
    calls = itertools.count()
    unnamed = PreparedUpdate(
        lambda job_id: (Job.objects.filter(id=job_id), {"error_code": f"call {next(calls)}"}),
        model=Job,
        job_id=Job._meta.pk,
    )
    with pytest.raises(ValueError, match="unordered and unsliced"):
        ordered.run(job_id=uuid.uuid4())
    with pytest.raises(ValueError, match="vary but are not named"):
        unnamed.run(job_id=uuid.uuid4())


def test_an_update_takes_json_and_integer_values_and_counts_its_rows():
    job = make_job(status=Job.Status.STARTED, deliveries=3)
    record = PreparedUpdate(
        lambda job_id, deliveries, thumbnails, archive_bytes: (
            Job.objects.filter(id=job_id, deliveries=deliveries),
            {"status": Job.Status.SUCCESS, "thumbnails": thumbnails, "archive_bytes": archive_bytes},
        ),
        model=Job,
        job_id=Job._meta.pk,
        deliveries=Job._meta.get_field("deliveries"),
        thumbnails=Job._meta.get_field("thumbnails"),
        archive_bytes=Job._meta.get_field("archive_bytes"),
    )
    thumbnails = [{"size": "128x128", "path": "jobs/x/a.jpg", "width": 128, "height": 96, "bytes": 1}]

    assert record.run(job_id=job.id, deliveries=2, thumbnails=[], archive_bytes=1) == 0
    assert record.run(job_id=job.id, deliveries=3, thumbnails=thumbnails, archive_bytes=10**10) == 1

    job.refresh_from_db()
    assert (job.status, job.thumbnails, job.archive_bytes) == (Job.Status.SUCCESS, thumbnails, 10**10)


def test_a_statement_that_fails_inside_atomic_marks_it_for_rollback():
    """As QuerySet.update does: the caller's transaction is not left usable-looking but broken."""
    job = make_job()
    breaking = PreparedUpdate(
        lambda job_id: (Job.objects.filter(id=job_id), {"client_name": None}),  # NOT NULL
        model=Job,
        job_id=Job._meta.pk,
    )

    with transaction.atomic():
        with pytest.raises(IntegrityError):
            breaking.run(job_id=job.id)
        assert transaction.get_connection().needs_rollback


def test_rows_are_not_asked_of_a_database_that_cannot_return_them(monkeypatch):
    monkeypatch.setattr(prepared, "update_returns_rows", lambda connection: False)
    claim = PreparedUpdate(
        lambda job_id: (Job.objects.filter(id=job_id), {"status": Job.Status.STARTED}),
        model=Job,
        returning=True,
        job_id=Job._meta.pk,
    )

    with pytest.raises(NotSupportedError, match="cannot return rows from an UPDATE"):
        claim.run(job_id=uuid.uuid4())
