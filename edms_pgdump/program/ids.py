"""The import program's id steps: new ids computed for dry runs, forecast before any
is drawn, range-checked against the columns that hold them, and sequences advanced
after explicit ids."""

from __future__ import annotations

from psycopg import sql

from edms_pgdump import sqlgen
from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.catalog.read import SequenceInfo
from edms_pgdump.program.base import BuilderBase
from edms_pgdump.program.steps import (
    INSERTED,
    INTEGER_LIMITS,
    STAGED,
    Execute,
    Message,
    ProgramRefused,
    Record,
    Refuse,
    Step,
    When,
    at_least,
    count_of,
)


class IdSteps(BuilderBase):
    # -- ids ---------------------------------------------------------------------------
    def sequence_of(self, name: QualifiedName, column: str) -> SequenceInfo | None:
        col = self.table(name).column(column)
        if col is None or col.sequence is None:
            return None
        return self.catalog.sequences.get(col.sequence)

    def new_ids(self, name: QualifiedName) -> dict[str, sql.Composable]:
        """A dry run draws no value from a sequence: new ids are computed from its last
        value instead (the real import uses the column's own default)."""
        if not (self.opts.dry_run or self.compare):
            return {}
        ids: dict[str, sql.Composable] = {}
        for col in self.plan.tables[name].surrogate:
            seq = self.sequence_of(name, col.name)
            if seq is not None and seq.increment > 0:
                ids[col.name] = sqlgen.computed_id(seq.name, seq.min_value, seq.increment)
            elif col.default is not None and "nextval(" in col.default:
                raise ProgramRefused(
                    f"{name}.{col.name}: its default draws from a sequence the column does not own "
                    f"({col.default}), so a dry run cannot compute new ids without moving it; "
                    "run the import without --dry-run in a copy of the database, or make the column "
                    "own its sequence (ALTER SEQUENCE ... OWNED BY)"
                )
        return ids

    def id_holders(self, name: QualifiedName, column: str) -> list[tuple[str, str, int]]:
        """(table.column, type, limit) of every integer column that will hold new ids of
        ``name.column``: the column itself and the references to it in the archive."""
        out: list[tuple[str, str, int]] = []
        cols = [(name, column)]
        for other in self.tables:
            for e in self.plan.tables[other].expansions:
                if e.ref_table == name and column in e.fk.ref_columns:
                    cols.append((other, e.fk.columns[e.fk.ref_columns.index(column)]))
        for table, c in cols:
            col = self.table(table).column(c)
            base = (col.base_type or col.type) if col is not None else ""
            if base in INTEGER_LIMITS:
                out.append((f"{table}.{c}", base, INTEGER_LIMITS[base]))
        return out

    def forecast_ids(self, name: QualifiedName) -> None:
        """Before any id is drawn: when new ids might not fit a column that will hold them
        (the sequence is near the limit of its narrowest holder), compute them exactly
        without nextval and refuse, so a refused import moves no sequence."""
        if self.opts.dry_run or self.compare:
            return  # ids are computed anyway; range_checks sees them
        tp = self.plan.tables[name]
        names = self.staging[name]
        for col in tp.surrogate:
            seq = self.sequence_of(name, col.name)
            holders = self.id_holders(name, col.name)
            if seq is None or seq.increment <= 0 or not holders:
                continue
            holder, type_, limit = min(holders, key=lambda h: h[2])
            position = f"sequence:{col.name}"
            forecast = f"forecast:{col.name}"
            self.steps.append(
                Record(
                    "sequence position",
                    name,
                    sqlgen.sequence_position(seq.name, seq.min_value, seq.increment),
                    (position,),
                )
            )
            table = names.scratch("forecast")
            ids = {col.name: sqlgen.computed_id(seq.name, seq.min_value, seq.increment)}
            select = sqlgen.keyed_select(self.plan, tp, names, ids)
            refuse = Refuse(
                name,
                Message(
                    f"{name}: new ids from {seq.name} would reach ",
                    f", more than {holder} ({type_}, at most {limit}) can hold; nothing was written and "
                    f"no sequence moved. Fix: widen {holder} to bigint, or lower {seq.name} with setval "
                    "if its ids are far ahead",
                ),
                count_of(name, forecast),
            )
            exact: tuple[Step, ...] = (
                Execute("forecast ids", name, sqlgen.create_as(table, select)),
                Record("forecast ids", name, sqlgen.column_maxima(table, [col.name]), (forecast,)),
                When(at_least(limit + 1, count_of(name, forecast)), (refuse,), "new ids overflow"),
            )
            near = at_least(limit + 1, count_of(name, position), count_of(name, STAGED, seq.increment))
            self.steps.append(When(near, exact, "new ids may not fit"))

    def id_columns(self, name: QualifiedName) -> list[tuple[str, str]]:
        """(column, integer type) of every column the import writes ids into: new
        surrogate ids and resolved references."""
        tp = self.plan.tables[name]
        table = self.table(name)
        out: list[tuple[str, str]] = []
        wanted = [c.name for c in tp.surrogate]
        wanted += [c for e in sqlgen.active_expansions(tp, self.loaded(name)) for c in e.written]
        for c in dict.fromkeys(wanted):
            col = table.column(c)
            base = (col.base_type or col.type) if col is not None else ""
            if base in INTEGER_LIMITS:
                out.append((c, base))
        return out

    def range_checks(self, name: QualifiedName) -> None:
        """Ids the target allocates, or that references resolve to, must fit the column
        that holds them (a smallint reference to an integer id): refuse before writing."""
        columns = self.id_columns(name)
        if not columns:
            return
        labels = tuple(f"max:{c}" for c, _ in columns)
        query = sqlgen.column_maxima(self.staging[name].final, [c for c, _ in columns])
        self.steps.append(Record("id range", name, query, labels))
        for (column, type_), label in zip(columns, labels):
            limit = INTEGER_LIMITS[type_]
            column_sql = sqlgen.render(sqlgen.ident(column))
            refuse = Refuse(
                name,
                Message(
                    f"{name}.{column} is {type_} (at most {limit}) but the import would write id ",
                    f" into it; nothing was written. Fix: widen the column (ALTER TABLE {name} ALTER "
                    f"COLUMN {column_sql} TYPE bigint), or lower the referenced table's sequence "
                    "with setval if its ids are far ahead",
                ),
                count_of(name, label),
            )
            overflow = at_least(limit + 1, count_of(name, label))
            self.steps.append(When(overflow, (refuse,), f"{column} overflows"))

    def advance_sequences(self, name: QualifiedName) -> None:
        """Explicit values written into a serial or identity column (a table keyed by its
        own id): move its sequence to at least the largest value, never backwards, so
        the application's next ordinary INSERT does not collide."""
        if self.opts.dry_run:
            return
        tp = self.plan.tables[name]
        surrogate = {c.name for c in tp.surrogate}
        written = set(sqlgen.insert_columns(tp, self.loaded(name))) - surrogate
        for column in sorted(written):
            seq = self.sequence_of(name, column)
            if seq is None or seq.increment <= 0:
                continue
            stmt = sqlgen.advance_sequence(name, column, seq.name, seq.min_value)
            step = Execute("advance sequence", name, stmt)
            self.steps.append(When(at_least(1, count_of(name, INSERTED)), (step,), "ids kept"))
