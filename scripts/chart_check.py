#!/usr/bin/env python3
"""Lint, render and validate the steadfast Helm chart and plain manifests, offline.

Run with the project's virtualenv (scripts/setup creates it):

    .venv/bin/python scripts/chart_check.py lint charts/steadfast -f charts/steadfast/ci/x.yaml
    .venv/bin/python scripts/chart_check.py render charts/steadfast -f values.yaml --set halt=true
    .venv/bin/python scripts/chart_check.py validate deploy/manifests/*.yaml

Every command prints one JSON document on stdout, so tests/chart.rs can assert on it:

    lint      {"messages": [{"severity", "path", "error"}], "errors": [...]}
    render    {"manifests": [{"template", "object", "validation": {version: null | error}}],
               "notes": "..."}
    validate  {"manifests": [{"template": file, "object", "validation": {...}}]}

Helm runs in-process through helm-python-sdk (Helm's own Go library: the same lint and the same
template engine as `helm lint --strict` and `helm template`); manifests are checked with
kubernetes-validate against the strict (no unknown fields) schemas of each --kube-version.

Exit codes: 0 the command ran (findings are in the JSON), 3 Helm refused the chart or values
(the JSON has "error"), 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import yaml

DEFAULT_KUBE_VERSIONS = ["1.27", "1.30", "1.33"]

# The errors meaning "no schema to check against" (a CRD's kind, an unknown version). Not every
# kubernetes-validate release defines VersionNotSupportedError; naming a missing one in an
# `except` clause would crash the check instead of reporting the object.
SCHEMA_ERRORS = tuple(
    getattr(kubernetes_validate, name)
    for name in ("SchemaNotFoundError", "InvalidSchemaError", "VersionNotSupportedError")
    if hasattr(kubernetes_validate, name)
)


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge values the way repeated `-f`/`--set` do: maps recursively, anything else replaced."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def load_values(files: list[str], sets: list[str], set_jsons: list[str]) -> dict[str, Any] | None:
    """User values from files and --set/--set-json, parsed by Helm's own parsers."""
    if not files and not sets and not set_jsons:
        return None
    values: dict[str, Any] = {}
    for path in files:
        values = merge(values, helm.values_from_yaml(Path(path).read_text()))
    for expression in sets:
        values = merge(values, helm.parse_set_string(expression))
    for expression in set_jsons:
        values = merge(values, helm.parse_set_json(expression))
    return values


def validate_object(obj: dict[str, Any], versions: list[str]) -> dict[str, str | None]:
    """kubernetes-validate in strict mode per Kubernetes version: None when valid."""
    results: dict[str, str | None] = {}
    for version in versions:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
            results[version] = None
        except kubernetes_validate.ValidationError as err:
            # The error copies the jsonschema error's fields: path and message.
            path = "/".join(str(p) for p in err.path)
            results[version] = f"{path}: {err.message}"
        except SCHEMA_ERRORS as err:
            results[version] = str(getattr(err, "message", err))
    return results


def documents(text: str) -> list[dict[str, Any]]:
    """The non-empty YAML documents of a manifest stream."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def manifest_entries(source: str, text: str, versions: list[str]) -> list[dict[str, Any]]:
    return [
        {"template": source, "object": obj, "validation": validate_object(obj, versions)}
        for obj in documents(text)
    ]


def cmd_lint(args: argparse.Namespace) -> dict[str, Any]:
    values = load_values(args.values, args.set, args.set_json)
    report = helm.lint(
        args.chart,
        values,
        strict=True,
        namespace=args.namespace,
        kube_version=f"v{args.kube_version[-1]}.0",
    )
    return {"messages": report.get("messages") or [], "errors": report.get("errors") or []}


def cmd_render(args: argparse.Namespace) -> dict[str, Any]:
    values = load_values(args.values, args.set, args.set_json)
    with helm.Chart.load(args.chart) as chart:
        rendered = chart.render(values, name=args.name, namespace=args.namespace, is_install=True)
    manifests: list[dict[str, Any]] = []
    notes = ""
    for template, text in sorted(rendered.items()):
        if template.endswith("NOTES.txt"):
            notes = text
        elif Path(template).name.startswith("_"):
            continue
        else:
            manifests.extend(manifest_entries(template, text, args.kube_version))
    return {"manifests": manifests, "notes": notes}


def cmd_validate(args: argparse.Namespace) -> dict[str, Any]:
    manifests: list[dict[str, Any]] = []
    for path in args.files:
        manifests.extend(manifest_entries(path, Path(path).read_text(), args.kube_version))
    return {"manifests": manifests}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = top.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--kube-version", action="append", default=None,
                       help=f"Kubernetes minor version to validate against (repeatable; default {DEFAULT_KUBE_VERSIONS})")

    def chart_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("chart", help="chart directory")
        p.add_argument("-f", "--values", action="append", default=[], help="values file (repeatable)")
        p.add_argument("--set", action="append", default=[], help="key=value (repeatable)")
        p.add_argument("--set-json", action="append", default=[], help="key=<json> (repeatable)")
        p.add_argument("--name", default="steadfast", help="release name")
        p.add_argument("--namespace", default="steadfast", help="release namespace")
        common(p)

    chart_args(sub.add_parser("lint", help="helm lint --strict"))
    chart_args(sub.add_parser("render", help="helm template, then validate every manifest"))
    validate = sub.add_parser("validate", help="validate plain manifest files")
    validate.add_argument("files", nargs="+")
    common(validate)
    return top


def main() -> int:
    args = parser().parse_args()
    args.kube_version = args.kube_version or DEFAULT_KUBE_VERSIONS
    commands = {"lint": cmd_lint, "render": cmd_render, "validate": cmd_validate}
    try:
        result = commands[args.command](args)
    except helm.HelmError as err:
        json.dump({"error": str(err)}, sys.stdout)
        print()
        return 3
    json.dump(result, sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
