"""SELECTs the ORM compiles once per database, then runs with new values.

Django compiles a queryset into SQL every time it is evaluated. For Job's ~40 columns that is
about 0.3 ms of CPU (the SELECT list, each column's converters), six times what SQLite takes
to run the statement, and the hottest reads run once or more for every job: the status read,
the worker's read after its claim, the repeat lookup. A PreparedSelect asks the ORM for the SQL
once, with a marker value in each parameter, remembers where the markers landed, and from then
on only fills in the values and converts the row, as the ORM's own iterator would.

(django-prepared-queries did this once; it is unmaintained and predates Django 4.)
"""

import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.models.query import QuerySet


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple
    # For each parameter name, the positions its marker took in `params`.
    slots: tuple[tuple[str, tuple[int, ...]], ...]
    attnames: tuple[str, ...]
    # Column position -> (converter functions, the column expression they are called with).
    converters: dict[int, tuple[list[Callable], Any]]


class PreparedSelect:
    """Rows of `queryset`'s model where each field in `parameters` equals the value given.

    `queryset` holds the fixed part (other conditions, an order), `limit` caps the rows; each
    parameter becomes an `=` condition on that field. Parameters can be UUID and text fields,
    whose markers can be told apart from every other value in the statement.
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
        self.queryset = queryset
        self.model = queryset.model
        self.fields = {name: self.model._meta.get_field(name) for name in parameters}
        self.limit = limit
        self.using = using
        self._compiled: dict[tuple[str, str], _Compiled] = {}
        self._lock = threading.Lock()

    def fetch(self, **values) -> list[models.Model]:
        if values.keys() != self.fields.keys():
            raise TypeError(f"expected values for {sorted(self.fields)}, got {sorted(values)}")
        connection = connections[self.using]
        compiled = self._compiled.get((connection.alias, connection.vendor)) or self._compile(connection)
        params = list(compiled.params)
        for name, positions in compiled.slots:
            value = self.fields[name].get_db_prep_value(values[name], connection, prepared=False)
            for position in positions:
                params[position] = value
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall()
        return [
            self.model.from_db(connection.alias, compiled.attnames, _converted(row, compiled, connection))
            for row in rows
        ]

    def first(self, **values) -> models.Model | None:
        rows = self.fetch(**values)
        return rows[0] if rows else None

    def _compile(self, connection) -> _Compiled:
        with self._lock:
            markers = {name: _marker(field) for name, field in self.fields.items()}
            queryset = self.queryset.filter(**markers)[: self.limit]
            compiler = queryset.query.get_compiler(connection=connection)
            sql, params = compiler.as_sql()
            slots = []
            for name, marker in markers.items():
                prepared = self.fields[name].get_db_prep_value(marker, connection, prepared=False)
                positions = tuple(index for index, param in enumerate(params) if param == prepared)
                if not positions:
                    raise ValueError(f"the marker for {name!r} did not reach the SQL: {sql}")
                slots.append((name, positions))
            columns = [column for column, _sql, _alias in compiler.select]
            compiled = _Compiled(
                sql=sql,
                params=tuple(params),
                slots=tuple(slots),
                attnames=tuple(column.target.attname for column in columns),
                converters=compiler.get_converters(columns),
            )
            self._compiled[(connection.alias, connection.vendor)] = compiled
            return compiled


def _marker(field: models.Field):
    """A value of the field's type that no other parameter of the statement can equal."""
    if isinstance(field, models.UUIDField):
        return uuid.uuid4()
    if isinstance(field, models.CharField | models.TextField):
        return f"marker-{secrets.token_hex(8)}"[: field.max_length or None]
    raise TypeError(f"PreparedSelect cannot take {type(field).__name__} {field.name!r} as a parameter")


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
