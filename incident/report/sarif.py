"""SARIF 2.1.0 for GitHub code scanning and other SARIF consumers."""

from __future__ import annotations

import json
from typing import Any

from incident import __version__
from incident.detect.rules import KeyKind, Mode
from incident.history.model import Finding, Location, ScanReport
from incident.report.findings import describe_first_seen, describe_location

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFO_URI = "https://docs.stripe.com/keys"

_RULES: dict[KeyKind, tuple[str, str, str]] = {
    KeyKind.SECRET_KEY: (
        "stripe-secret-key",
        "StripeSecretKey",
        "Stripe secret API key committed to git",
    ),
    KeyKind.RESTRICTED_KEY: (
        "stripe-restricted-key",
        "StripeRestrictedKey",
        "Stripe restricted API key committed to git",
    ),
    KeyKind.WEBHOOK_SECRET: (
        "stripe-webhook-secret",
        "StripeWebhookSecret",
        "Stripe webhook signing secret committed to git",
    ),
    KeyKind.PUBLISHABLE_KEY: (
        "stripe-publishable-key",
        "StripePublishableKey",
        "Stripe publishable key (not a secret) in git",
    ),
}

_HELP = (
    "Anyone who has read this repository's history can use the key. Roll it now "
    "(incident roll), then remove it from every ref (incident purge) and read the "
    "key's request logs in the Stripe Dashboard for use you do not recognise."
)


def _rule(kind: KeyKind) -> dict[str, Any]:
    rule_id, name, text = _RULES[kind]
    secret = kind.is_secret
    return {
        "id": rule_id,
        "name": name,
        "shortDescription": {"text": text},
        "fullDescription": {
            "text": text
            + ". "
            + (
                _HELP
                if secret
                else "Publishable keys are meant for browsers; listed for completeness."
            )
        },
        "helpUri": INFO_URI,
        "help": {"text": _HELP, "markdown": _HELP},
        "defaultConfiguration": {"level": "error" if secret else "note"},
        "properties": {
            "tags": ["security", "secret", "stripe"],
            "security-severity": "9.8" if secret else "1.0",
            "precision": "very-high",
        },
    }


def _level(finding: Finding) -> str:
    if not finding.kind.is_secret:
        return "note"
    return "error" if finding.mode in (Mode.LIVE, Mode.UNKNOWN) else "warning"


def _physical(location: Location) -> dict[str, Any]:
    # GitHub needs a file-like location for every result; messages and dangling
    # objects get a stable pseudo-path that names the object.
    if location.shown_path and location.source in {"file", "index", "note"}:
        uri = location.shown_path
    elif location.source == "commit-message":
        uri = f".git-history/commit-message/{location.object_id}"
    elif location.source == "tag-message":
        uri = f".git-history/tag-message/{location.tag or location.object_id}"
    elif location.source == "ref-name":
        uri = ".git-history/ref-name"
    else:
        uri = f".git-history/object/{location.object_id}"
    return {
        "artifactLocation": {"uri": uri},
        "region": {"startLine": max(1, location.line)},
    }


def _result(finding: Finding, rules: list[str]) -> dict[str, Any]:
    rule_id = _RULES[finding.kind][0]
    message = (
        f"{finding.kind} ({finding.mode}) {finding.redacted}, "
        f"sha256:{finding.fingerprint}. First seen {describe_first_seen(finding)}. "
        f"Refs: {', '.join(finding.shown_refs) or 'none (unreachable)'}."
    )
    result: dict[str, Any] = {
        "ruleId": rule_id,
        "ruleIndex": rules.index(rule_id),
        "level": _level(finding),
        "message": {"text": message},
        "locations": [
            {"physicalLocation": _physical(loc)} for loc in finding.locations[:1]
        ],
        "partialFingerprints": {"stripeSecretSha256/v1": finding.fingerprint},
        "properties": {
            "redacted": finding.redacted,
            "mode": str(finding.mode),
            "refs": finding.shown_refs,
            "presentAtTips": finding.shown_tips,
            "allLocations": [describe_location(loc) for loc in finding.locations],
        },
    }
    if len(finding.locations) > 1:
        result["relatedLocations"] = [
            {
                "id": number,
                "physicalLocation": _physical(loc),
                "message": {"text": describe_location(loc)},
            }
            for number, loc in enumerate(finding.locations[1:], start=1)
        ]
    return result


def render_sarif(report: ScanReport) -> str:
    """One SARIF run; incompleteness is a tool execution notification."""
    findings = report.findings + report.publishable
    kinds = sorted(
        {f.kind for f in findings} | {KeyKind.SECRET_KEY}, key=list(KeyKind).index
    )
    rules = [_rule(kind) for kind in kinds]
    rule_ids = [rule["id"] for rule in rules]
    notifications = [
        {
            "level": "error" if item.makes_incomplete else "warning",
            "message": {"text": f"{item.kind}: {item.detail}"},
        }
        for item in report.unscanned
    ]
    sarif = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "incident",
                        "version": __version__,
                        "informationUri": INFO_URI,
                        "rules": rules,
                    }
                },
                "invocations": [
                    {
                        "executionSuccessful": not report.incomplete,
                        "toolExecutionNotifications": notifications,
                    }
                ],
                "results": [_result(f, rule_ids) for f in findings],
                "properties": {
                    "complete": not report.incomplete,
                    "scannedAt": report.scanned_at,
                },
            }
        ],
    }
    return json.dumps(sarif, indent=2) + "\n"
