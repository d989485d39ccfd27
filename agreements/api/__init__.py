"""The court API (/api/v1/): Django REST Framework, documented by
drf-spectacular at /api/schema/ and in docs/court-api.md."""
