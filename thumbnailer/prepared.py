"""Statements the ORM compiles once per database, then runs with new values.

Django compiles a queryset into SQL every time it is evaluated. For Job's ~40 columns that is
about 0.3 ms of CPU for a read (the SELECT list, each column's converters) and more for the
worker's claim, several times what SQLite takes to run the statement, and these run once or
more for every job: the status read, the claim, the repeat lookup. A prepared statement asks
the ORM for the SQL once per database, twice over with different marker values in its
parameters, keeps where the markers landed, and from then on only fills in the values and
converts the rows as the ORM's own iterator would.

(django-prepared-queries did this once; it is unmaintained and predates Django 4.)
"""

import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import DEFAULT_DB_ALIAS, NotSupportedError, connections, models, transaction
from django.db.models.query import QuerySet
from django.db.models.sql import UpdateQuery


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple
    # For each parameter name, the positions its value takes in `params`.
    slots: tuple[tuple[str, tuple[int, ...]], ...]
    # The model fields the rows hold, and column position -> (converters, their expression).
    attnames: tuple[str, ...] = ()
    converters: dict[int, tuple[list[Callable], Any]] | None = None


class _Prepared:
    """What a prepared SELECT and UPDATE share: the compiling, the values, the rows."""

    def __init__(self, model: type[models.Model], fields: dict[str, models.Field], using: str):
        for field in fields.values():
            _marker(field, 0, 0)  # refuses, now, a parameter it could not prepare
        self.model = model
        self.fields = fields
        self.using = using
        self._compiled: dict[tuple[str, str], _Compiled] = {}
        self._lock = threading.Lock()

    def _sql_and_params(self, markers: dict, connection) -> tuple[str, list]:
        raise NotImplementedError

    def _columns(self, connection) -> tuple[tuple[str, ...], dict]:
        raise NotImplementedError

    def _execute(self, values: dict) -> list[models.Model] | int:
        """The rows the statement returns as model instances, or, returning none, its row count."""
        if values.keys() != self.fields.keys():
            raise TypeError(f"expected values for {sorted(self.fields)}, got {sorted(values)}")
        connection = connections[self.using]
        compiled = self._compiled.get((connection.alias, connection.vendor)) or self._compile(connection)
        params = list(compiled.params)
        for name, positions in compiled.slots:
            value = self.fields[name].get_db_prep_value(values[name], connection, prepared=False)
            for position in positions:
                params[position] = value
        # As QuerySet.update does: inside atomic(), an error marks the transaction for rollback.
        with transaction.mark_for_rollback_on_error(using=self.using), connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            if not compiled.attnames:
                return cursor.rowcount
            rows = cursor.fetchall()
        return [
            self.model.from_db(connection.alias, compiled.attnames, _converted(row, compiled, connection))
            for row in rows
        ]

    def _compile(self, connection) -> _Compiled:
        """Compile with two sets of markers: the positions whose values differ are the parameters'."""
        with self._lock:
            first, second = (
                {
                    name: _marker(field, round_, index)
                    for index, (name, field) in enumerate(self.fields.items())
                }
                for round_ in (0, 1)
            )
            sql, first_params = self._sql_and_params(first, connection)
            second_sql, second_params = self._sql_and_params(second, connection)
            if sql != second_sql or len(first_params) != len(second_params):
                raise ValueError(f"the statement's SQL depends on its values: {sql}")
            slots, claimed = [], set()
            for name, field in self.fields.items():
                one, other = (
                    field.get_db_prep_value(m[name], connection, prepared=False) for m in (first, second)
                )
                positions = tuple(
                    index
                    for index, (a, b) in enumerate(zip(first_params, second_params, strict=True))
                    if _comparable(a) == _comparable(one) and _comparable(b) == _comparable(other)
                )
                if not positions:
                    raise ValueError(f"the value of {name!r} did not reach the SQL: {sql}")
                slots.append((name, positions))
                claimed.update(positions)
            varying = {
                index for index, (a, b) in enumerate(zip(first_params, second_params, strict=True)) if a != b
            }
            if varying - claimed:
                raise ValueError(f"parameters at {sorted(varying - claimed)} vary but are not named: {sql}")
            attnames, converters = self._columns(connection)
            compiled = _Compiled(
                sql=sql,
                params=tuple(first_params),
                slots=tuple(slots),
                attnames=attnames,
                converters=converters,
            )
            self._compiled[(connection.alias, connection.vendor)] = compiled
            return compiled


class PreparedSelect(_Prepared):
    """Rows of `queryset`'s model where each field in `parameters` equals the value given.

    `queryset` holds the fixed part (other conditions, an order), `limit` caps the rows; each
    parameter becomes an `=` condition on that field.
    """

    def __init__(
        self, queryset: QuerySet, *parameters: str, limit: int | None = None, using: str = DEFAULT_DB_ALIAS
    ):
        query = queryset.query
        if query.select_related or query.annotations or query.deferred_loading[0] or query.is_sliced:
            raise ValueError(
                "PreparedSelect takes plain model rows: no select_related, annotations, only() or slice "
                "(give limit= instead)"
            )
        model = queryset.model
        super().__init__(model, {name: model._meta.get_field(name) for name in parameters}, using)
        self.queryset = queryset
        self.limit = limit

    def fetch(self, **values) -> list[models.Model]:
        return self._execute(values)

    def first(self, **values) -> models.Model | None:
        rows = self.fetch(**values)
        return rows[0] if rows else None

    def _compiler(self, markers: dict, connection):
        queryset = self.queryset.filter(**markers)[: self.limit]
        return queryset.query.get_compiler(connection=connection)

    def _sql_and_params(self, markers, connection):
        return self._compiler(markers, connection).as_sql()

    def _columns(self, connection):
        compiler = self._compiler({}, connection)
        compiler.setup_query()
        columns = [column for column, _sql, _alias in compiler.select]
        return tuple(column.target.attname for column in columns), compiler.get_converters(columns)


class PreparedUpdate(_Prepared):
    """`queryset.update(**values)`, both built by `build(**parameters)`.

    With `returning`, the updated rows come back from the same statement (UPDATE ... RETURNING,
    see update_returns_rows), so a row read back is the row as this update left it,
    whatever runs at once.
    """

    def __init__(
        self,
        build: Callable[..., tuple[QuerySet, dict]],
        *,
        model: type[models.Model],
        returning: bool = False,
        using: str = DEFAULT_DB_ALIAS,
        **parameters: models.Field,
    ):
        super().__init__(model, parameters, using)
        self.build = build
        self.returning = returning

    def run(self, **values) -> list[models.Model] | int:
        """The updated rows (`returning`), else how many rows were updated."""
        return self._execute(values)

    def _sql_and_params(self, markers, connection):
        if self.returning and not update_returns_rows(connection):
            raise NotSupportedError(f"{connection.display_name} cannot return rows from an UPDATE")
        queryset, values = self.build(**markers)
        if queryset.model is not self.model:
            raise ValueError(f"build() made a {queryset.model.__name__} query, not {self.model.__name__}")
        query = queryset.query.chain(UpdateQuery)
        query.add_update_values(values)
        if query.related_updates or query.order_by or queryset.query.is_sliced:
            raise ValueError("PreparedUpdate takes one table's rows, unordered and unsliced")
        sql, params = query.get_compiler(connection=connection).as_sql()
        if not self.returning:
            return sql, list(params)
        returning = ", ".join(connection.ops.quote_name(field.column) for field in self._fields())
        return f"{sql} RETURNING {returning}", list(params)

    def _fields(self) -> list[models.Field]:
        return list(self.model._meta.concrete_fields)

    def _columns(self, connection):
        if not self.returning:
            return (), None
        table = self.model._meta.db_table
        columns = [field.get_col(table) for field in self._fields()]
        compiler = self.model._default_manager.all().query.get_compiler(connection=connection)
        return tuple(field.attname for field in self._fields()), compiler.get_converters(columns)


def update_returns_rows(connection) -> bool:
    """Whether `UPDATE ... RETURNING` works: on PostgreSQL, and on SQLite from 3.35, the release
    that brought RETURNING to INSERT and UPDATE alike (Django's flag for INSERT says which).
    MariaDB returns rows from an INSERT only."""
    return connection.vendor == "postgresql" or (
        connection.vendor == "sqlite" and connection.features.can_return_columns_from_insert
    )


def _marker(field: models.Field, round_: int, index: int):
    """A value of the field's type, different for each compiling round and parameter index.

    Random parts keep a marker from equalling a constant of the statement by design; one that
    did by chance would still not vary between the rounds, so it is never taken for a parameter.
    """
    token = f"{round_}-{index}-{secrets.token_hex(6)}"
    if isinstance(field, models.UUIDField):
        return uuid.uuid4()
    if isinstance(field, models.CharField | models.TextField):
        return f"marker-{token}"[: field.max_length or None]
    if isinstance(field, models.DateTimeField):
        return datetime(2001 + round_, 1, 1, tzinfo=UTC) + timedelta(
            seconds=index, microseconds=1 + secrets.randbelow(999_999)
        )
    if isinstance(field, models.IntegerField):
        # Within every integer field's range (a small one's is up to 32767), where Django
        # would otherwise turn the condition into "no rows".
        return 10_000 + 10_000 * round_ + 100 * index + secrets.randbelow(100)
    if isinstance(field, models.JSONField):
        return {"marker": token}
    raise TypeError(f"a prepared statement cannot take {type(field).__name__} {field.name!r} as a parameter")


def _comparable(param):
    """A parameter as it compares: psycopg wraps a JSON value (`Jsonb`), which has no equality."""
    return param.obj if hasattr(param, "obj") and hasattr(param, "dumps") else param


def _converted(row: tuple, compiled: _Compiled, connection) -> tuple:
    """The row as the ORM's iterator hands it to the model: each column through its converters."""
    if not compiled.converters:
        return row
    values = list(row)
    for position, (functions, expression) in compiled.converters.items():
        value = values[position]
        for function in functions:
            value = function(value, expression, connection)
        values[position] = value
    return values
