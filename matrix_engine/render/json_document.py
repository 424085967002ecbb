"""The matrix as a JSON document for scripts and dashboards. Its shape (format_version 1):

    {
      "format_version": 1,
      "title": "AI SLA Escalation Matrix - Customer support assistant",
      "profile": {"use_case": …, "interactions": "50k-250k", "impact": …, "on_call": …,
                  "review": …, "tier": "enterprise",
                  "labels": {"interactions": "50k-250k", …, "tier": "Enterprise"}},
      "header": {"text": "Readiness tier: Enterprise | …", "readiness_tier": "Enterprise",
                 "sev1_scenarios": 3, "executive_notify_paths": 3},
      "severity_mix": {"SEV-1": 3, "SEV-2": 2, "SEV-3": 1},
      "rows": [{"number": 1, "id": "model-outage", "title": …, "aliases": […],
                "severity": "SEV-1",
                "first_response": DURATION, "escalate_after": DURATION,
                "owners": [{"id": "ai-platform-oncall", "name": "AI Platform On-call"}],
                "primary_owner": "AI Platform On-call",
                "executive_notify": true,
                "customer_updates": {"text": "Every 30 min until mitigation",
                                     "kind": "every_until_mitigation", "interval": DURATION}}, …],
      "operating_rhythm": ["Validate incident channels …", …]
    }

DURATION is `{"text": "10 min", "amount": 10, "unit": "min", "business": false,
"nominal_seconds": 600}`; a business day counts 8 hours in nominal_seconds. `customer_updates`
holds the policy's own fields (`within`, `condition`, `trigger`) besides `text` and `kind`.
"""

from __future__ import annotations

import json
from typing import Any, Final

from matrix_engine.durations import Duration
from matrix_engine.generator import OPERATING_RHYTHM, header_line, severity_mix
from matrix_engine.models import IncidentRow, Matrix, Profile, Severity
from matrix_engine.policies import CustomerUpdatePolicy
from matrix_engine.render.cells import matrix_title

JSON_FORMAT_VERSION: Final = 1


def render_json(matrix: Matrix) -> str:
    """The matrix in the documented JSON shape, indented, keys in a fixed order."""
    document = {
        "format_version": JSON_FORMAT_VERSION,
        "title": matrix_title(matrix),
        "profile": _profile(matrix.profile),
        "header": _header(matrix),
        "severity_mix": {sev.value: count for sev, count in severity_mix(matrix).items()},
        "rows": [_row(matrix, number, row) for number, row in enumerate(matrix.incidents, 1)],
        "operating_rhythm": list(OPERATING_RHYTHM),
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _profile(profile: Profile) -> dict[str, Any]:
    labels = {
        "interactions": profile.interactions.label,
        "impact": profile.impact.label,
        "on_call": profile.on_call.label,
        "review": profile.review.label,
        "tier": profile.tier.label,
    }
    return {**profile.model_dump(mode="json"), "labels": labels}


def _header(matrix: Matrix) -> dict[str, Any]:
    return {
        "text": header_line(matrix),
        "readiness_tier": matrix.profile.tier.label,
        "sev1_scenarios": sum(1 for row in matrix.incidents if row.severity is Severity.SEV1),
        "executive_notify_paths": sum(1 for row in matrix.incidents if row.executive_notify),
    }


def _row(matrix: Matrix, number: int, row: IncidentRow) -> dict[str, Any]:
    return {
        "number": number,
        "id": row.id,
        "title": row.title,
        "aliases": list(row.aliases),
        "severity": row.severity.value,
        "first_response": _duration(row.first_response),
        "escalate_after": _duration(row.escalate_after),
        "owners": [{"id": slug, "name": _owner_name(matrix, slug)} for slug in row.owners],
        "primary_owner": matrix.owner_names(row),
        "executive_notify": row.executive_notify,
        "customer_updates": _policy(row.customer_updates),
    }


def _owner_name(matrix: Matrix, slug: str) -> str:
    role = matrix.owners.get(slug)
    return slug if role is None else role.name


def _duration(duration: Duration) -> dict[str, Any]:
    return {
        "text": str(duration),
        "amount": duration.amount,
        "unit": duration.unit.value,
        "business": duration.business,
        "nominal_seconds": duration.nominal_seconds,
    }


def _policy(policy: CustomerUpdatePolicy) -> dict[str, Any]:
    fields: dict[str, Any] = {"text": policy.render()}
    for name, value in policy:
        fields[name] = _duration(value) if isinstance(value, Duration) else value
    return fields
