"""Refuse changes to the audit log in the database itself: UPDATE and DELETE
on PostgreSQL, UPDATE on SQLite (whose test flush deletes rows). The hash
chain detects tampering on every vendor, including by the table's owner."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION odr_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'odr_auditevent is append-only';
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER odr_auditevent_append_only
    BEFORE UPDATE OR DELETE ON odr_auditevent
    FOR EACH ROW EXECUTE FUNCTION odr_audit_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS odr_auditevent_append_only ON odr_auditevent;
DROP FUNCTION IF EXISTS odr_audit_append_only();
"""


SQLITE_CREATE = """
CREATE TRIGGER odr_auditevent_append_only BEFORE UPDATE ON odr_auditevent
BEGIN SELECT RAISE(ABORT, 'odr_auditevent is append-only'); END;
"""
SQLITE_DROP = "DROP TRIGGER IF EXISTS odr_auditevent_append_only;"


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(CREATE)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_CREATE)


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(DROP)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_DROP)


class Migration(migrations.Migration):
    dependencies = [("odr", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
