"""The court API, version 1. A token reaches its own court's filings only;
anything else is 404, as if it did not exist."""

import uuid
from dataclasses import asdict

from django.db.models import Max
from django.http import Http404, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers as drf_serializers
from rest_framework.decorators import api_view
from rest_framework.response import Response

from agreements.api.serializers import (
    ErrorSerializer,
    FilingPageSerializer,
    FilingSerializer,
    StatusChangeSerializer,
    VerificationSerializer,
)
from agreements.models import Filing, FilingEvent
from agreements.selectors import filing_of_court
from agreements.services import filing as filing_services
from agreements.services.issuing import agreement_download_for_court, sealed_pdf
from agreements.verification import verify_pdf

MAX_LIMIT = 200
ERRORS = {400: ErrorSerializer, 401: ErrorSerializer, 403: ErrorSerializer, 404: ErrorSerializer}


def _filing(request, filing_id) -> Filing:
    """(Ids are matched here, not by the URL pattern, so that a malformed id
    is a JSON 404 like any other.)"""
    try:
        filing_id = uuid.UUID(str(filing_id))
    except ValueError:
        raise Http404 from None
    filing = filing_of_court(court=request.auth.court, public_id=filing_id)
    if filing is None:
        raise Http404
    return filing


def _only_params(request, allowed=()) -> None:
    """Unknown query parameters are refused, not ignored: a typo in a
    parameter's name must not silently change what is answered."""
    unknown = sorted(set(request.query_params) - set(allowed))
    if unknown:
        raise drf_serializers.ValidationError({name or "(empty)": ["Unknown parameter."] for name in unknown})


class ListParams(drf_serializers.Serializer):
    since = drf_serializers.IntegerField(
        min_value=0, default=0, help_text="A cursor from an earlier answer (0: from the start)."
    )
    limit = drf_serializers.IntegerField(
        min_value=1, max_value=MAX_LIMIT, default=50, help_text=f"At most this many filings (1–{MAX_LIMIT})."
    )


@extend_schema(
    operation_id="filings_list",
    summary="Filings of your court that changed after a cursor",
    parameters=[ListParams],
    responses={200: FilingPageSerializer, **ERRORS},
)
@api_view(["GET"])
def filings(request):
    _only_params(request, ListParams().fields)
    params = ListParams(data=request.query_params)
    params.is_valid(raise_exception=True)
    since, limit = params.validated_data["since"], params.validated_data["limit"]
    changed = (
        FilingEvent.objects.filter(filing__court=request.auth.court, id__gt=since)
        .values("filing").annotate(last=Max("id")).order_by("last")[:limit]
    )
    last_by_filing = {row["filing"]: row["last"] for row in changed}
    rows = (
        Filing.objects.filter(pk__in=last_by_filing).select_related("case", "court", "agreement")
        .prefetch_related("events")
    )
    ordered = sorted(rows, key=lambda f: last_by_filing[f.pk])
    next_cursor = max(last_by_filing.values(), default=since)
    return Response({"results": FilingSerializer(ordered, many=True).data, "next_cursor": next_cursor})


FILING_ID = OpenApiParameter("filing_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The filing's id.")


@extend_schema(operation_id="filing_detail", parameters=[FILING_ID], summary="One filing", responses={200: FilingSerializer, **ERRORS})
@api_view(["GET"])
def filing(request, filing_id):
    _only_params(request)
    return Response(FilingSerializer(_filing(request, filing_id)).data)


@extend_schema(
    operation_id="filing_verification", parameters=[FILING_ID], summary="The verification report of the filed PDF",
    responses={200: VerificationSerializer, **ERRORS},
)
@api_view(["GET"])
def verification(request, filing_id):
    _only_params(request)
    item = _filing(request, filing_id)
    report = verify_pdf(sealed_pdf(item.agreement))
    return Response(asdict(report))


@extend_schema(
    operation_id="filing_pdf", parameters=[FILING_ID], summary="The sealed agreement (PDF); audited",
    responses={(200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY), **ERRORS},
)
@api_view(["GET"])
def filing_pdf(request, filing_id):
    _only_params(request)
    item = _filing(request, filing_id)
    pdf = agreement_download_for_court(filing=item, token=request.auth)
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="mediation-agreement-{item.case.reference}.pdf"'
    response["Cache-Control"] = "private, no-store"
    return response


@extend_schema(
    operation_id="filing_status", parameters=[FILING_ID], summary="Record the court's answer: received, approved or returned (with a reason)",
    request=StatusChangeSerializer, responses={200: FilingSerializer, **ERRORS, 413: ErrorSerializer},
)
@api_view(["POST"])
def filing_status(request, filing_id):
    _only_params(request)
    item = _filing(request, filing_id)
    change = StatusChangeSerializer(data=request.data)
    change.is_valid(raise_exception=True)
    updated = filing_services.filing_status_set(
        filing=item, status=change.validated_data["status"], reason=change.validated_data["reason"],
        source=FilingEvent.Source.API,
    )
    return Response(FilingSerializer(_filing(request, updated.public_id)).data)
