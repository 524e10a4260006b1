"""PostgreSQL triggers that keep the audit trail append-only, declared on the models with django-pgtrigger.

django-pgtrigger writes each trigger into a migration and checks it is installed, but every trigger it
installs first asks ``_pgtrigger_should_ignore()``, which returns early when the session has set
``pgtrigger.ignore`` to the trigger's name. Any role can ``SET`` such a variable, so anyone with the
application's database log-in could switch the protection off with one plain-SQL statement. The triggers
here are installed from the same template minus that switch: nothing in the application turns them off,
and the one change they allow (the retention purge's tombstone) is written by the trigger itself.

On SQLite (``make run``'s database) django-pgtrigger installs nothing: the triggers exist on PostgreSQL only.
"""

from __future__ import annotations

from typing import Any

import pgtrigger
from pgtrigger import compiler


class StrictUpsertTriggerSql(compiler.UpsertTriggerSql):
    """django-pgtrigger's installation SQL without the ``pgtrigger.ignore`` session switch.

    Migrations name this class and rebuild the SQL from this template: change it only with a new class.
    """

    def get_template(self) -> str:
        return """
            CREATE OR REPLACE FUNCTION {pgid}()
            RETURNS TRIGGER AS $$
                {declare}
                BEGIN
                    {func}
                END;
            $$ LANGUAGE plpgsql;

            DROP TRIGGER IF EXISTS {pgid} ON {table};
            CREATE {constraint} TRIGGER {pgid}
                {when} {operation} ON {table}
                {timing}
                {referencing}
                FOR EACH {level} {condition}
                EXECUTE PROCEDURE {execute};

            COMMENT ON TRIGGER {pgid} ON {table} IS '{hash}';
        """


class StrictTrigger(pgtrigger.Trigger):
    """A row trigger that no session setting can skip."""

    def compile(self, model: Any) -> compiler.Trigger:
        compiled = super().compile(model)
        return compiler.Trigger(name=compiled.name, sql=StrictUpsertTriggerSql(**compiled.sql.kwargs))


class Refuse(StrictTrigger):
    """Refuse the operation (optionally only when ``condition`` holds), naming the table and the rule."""

    when = pgtrigger.Before

    def __init__(self, *, name: str, operation: Any, rule: str, condition: Any = None) -> None:
        message = rule.replace("'", "''")
        super().__init__(
            name=name,
            operation=operation,
            condition=condition,
            func=(
                f"RAISE EXCEPTION '% refused on %: {message}', TG_OP, TG_TABLE_NAME"
                " USING ERRCODE = '42501';"  # insufficient_privilege
            ),
        )


APPEND_ONLY = "the audit trail is append-only"


def append_only(prefix: str) -> list[pgtrigger.Trigger]:
    """Refuse every UPDATE and every DELETE of the model's rows."""
    return [
        Refuse(name=f"{prefix}_no_update", operation=pgtrigger.Update, rule=APPEND_ONLY),
        Refuse(name=f"{prefix}_no_delete", operation=pgtrigger.Delete, rule=APPEND_ONLY),
    ]
