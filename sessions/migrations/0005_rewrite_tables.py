"""Rewrite the tables 0004 changed, so that the plaintext of the dropped
columns does not linger in the database files.

Dropping a column does not rewrite a PostgreSQL table (the old values stay in
its pages) and SQLite keeps them in free pages and the WAL. VACUUM FULL /
VACUUM writes the tables afresh. It locks them while it runs: on an existing
installation, run this upgrade in a maintenance window. Backups and WAL
archives taken before the upgrade still hold the plaintext: retire them
(docs/operations.md)."""

from django.db import migrations

TABLES = ("mediation_roomevent", "mediation_roomdocument")


def rewrite(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for table in TABLES:
                cursor.execute(f"VACUUM FULL {connection.ops.quote_name(table)}")
        elif connection.vendor == "sqlite":
            cursor.execute("VACUUM")
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("mediation", "0004_confidentiality")]

    operations = [migrations.RunPython(rewrite, migrations.RunPython.noop, elidable=True)]
