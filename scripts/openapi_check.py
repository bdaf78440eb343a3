#!/usr/bin/env python3
"""Checks Revisit's OpenAPI document against a running server.

    python3 scripts/openapi_check.py http://127.0.0.1:8080          # a `serve --demo` server
    python3 scripts/openapi_check.py --spec-only http://127.0.0.1:8080

1. Validates /seiapi/v3/openapi.json with openapi-spec-validator (OpenAPI 3.1).
2. Checks what the document must say: unique operation ids, 401 on every protected operation,
   413/415 on every operation with a body, Followup's 504, OpenSlots' 503, the Idempotency-Key
   header, the operational endpoints.
3. Unless --spec-only: walks the demo's technician flow (tech01 closes an Onsite order, searches,
   books, reads) and the admin's reads, and validates every answer against the schema the
   document gives for that operation and status (jsonschema, draft 2020-12, as OpenAPI 3.1).

Needs `openapi-spec-validator` and `jsonschema` (pip). Exits non-zero on the first failure.
tests/openapi_demo.rs runs it under `cargo test` when both are installed.
"""

import json
import sys
import urllib.error
import urllib.request

from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

METHODS = ("get", "put", "post", "patch", "delete")


def call(base, method, path, token=None, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method.upper())
    if body is not None:
        req.add_header("content-type", "application/json")
    if token:
        req.add_header("x-access-token", token)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, raw, ctype = r.status, r.read(), r.headers.get("content-type", "")
    except urllib.error.HTTPError as e:
        status, raw, ctype = e.code, e.read(), e.headers.get("content-type", "")
    value = json.loads(raw) if raw and ctype.startswith("application/json") else raw
    return status, value


def check_document(doc):
    validate(doc)
    ops = [(p, m, op) for p, item in doc["paths"].items() for m, op in item.items() if m in METHODS]
    ids = [op.get("operationId") for _, _, op in ops]
    dupes = {i for i in ids if ids.count(i) > 1}
    assert not dupes, f"operation ids used twice: {dupes}"
    for path, method, op in ops:
        where = f"{method.upper()} {path}"
        codes = op["responses"].keys()
        if op.get("security"):
            assert "401" in codes, f"{where} is protected but lists no 401"
        if "requestBody" in op:
            for c in ("400", "413", "415"):
                assert c in codes, f"{where} takes a body but lists no {c}"
            content = op["requestBody"]["content"]["application/json"]["schema"]
            assert content.get("$ref") or content.get("type") != "object" or content.get(
                "properties"
            ), f"{where}: the request body is a bare object"
        for code, resp in op["responses"].items():
            if code.startswith("2") and code != "204":
                assert resp.get("content"), f"{where} {code} has no schema"
    followup = doc["paths"]["/seiapi/v3/trans/WorkOrder/{WorkOrderID}/Followup"]["post"]
    assert "504" in followup["responses"], "Followup lists no 504"
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in followup["parameters"])
    slots = doc["paths"]["/seiapi/v3/trans/Appointments/OpenSlots"]["post"]
    assert "503" in slots["responses"], "OpenSlots lists no 503"
    for p in ("/healthz", "/readyz", "/metrics"):
        assert p in doc["paths"], f"{p} is missing"
    schemes = doc["components"]["securitySchemes"]
    assert any(s.get("name") == "x-access-token" and s.get("in") == "header" for s in schemes.values())
    lic = doc["info"].get("license")
    assert lic is None or lic.get("name"), "license without a name"
    return len(ops)


def validator_for(doc, path, method, status):
    op = doc["paths"][path][method]
    resp = op["responses"].get(str(status))
    assert resp is not None, f"{method.upper()} {path} answered {status}, which the document does not list"
    schema = resp["content"]["application/json"]["schema"]
    root = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "allOf": [schema],
        "components": doc["components"],
    }
    return Draft202012Validator(root)


def conforms(doc, path, method, status, body):
    errors = sorted(validator_for(doc, path, method, status).iter_errors(body), key=str)
    assert not errors, f"{method.upper()} {path} {status}: {errors[0].message} at {list(errors[0].absolute_path)}"


def demo_flow(base, doc):
    checked = 0

    def hit(method, templ, path, token=None, body=None, headers=None, expect=None):
        nonlocal checked
        status, value = call(base, method, path, token, body, headers)
        if expect is not None:
            assert status == expect, f"{method} {path}: {status} {value}"
        conforms(doc, templ, method, status, value)
        checked += 1
        return value

    hit("get", "/healthz", "/healthz", expect=200)
    hit("get", "/readyz", "/readyz", expect=200)
    t = hit("post", "/createjwt", "/createjwt", body={"username": "tech01", "password": "tech01"}, expect=200)["token"]
    a = hit("post", "/createjwt", "/createjwt", body={"username": "admin", "password": "admin"}, expect=200)["token"]
    hit("post", "/createjwt", "/createjwt", body={"username": "tech01", "password": "nope"}, expect=401)
    lst = "/seiapi/v3/trans/WorkOrders"
    onsite = hit("get", lst, lst + "?OrderStatus=7", t, expect=200)["WorkOrders"]
    assert onsite, "tech01 has no Onsite order: start the demo anew (serve --demo --reset-demo)"
    wo = onsite[0]["OrderNum"]
    one = "/seiapi/v3/trans/WorkOrder/{WorkOrderNum}"
    hit("get", one, f"/seiapi/v3/trans/WorkOrder/{wo}", t, expect=200)
    hit("get", lst, lst, None, expect=401)
    hit("get", lst, lst + "?Limit=0", t, expect=400)
    hit("get", one, "/seiapi/v3/trans/WorkOrder/NO-SUCH", t, expect=404)
    hit("patch", one, f"/seiapi/v3/trans/WorkOrder/{wo}", t, {"OrderStatus": 4097, "ReasonCode": "2001"}, expect=200)
    slots = "/seiapi/v3/trans/Appointments/OpenSlots"
    offers = hit("post", slots, slots, t, {"OriginalOrderNum": wo}, expect=200)["TimeConstraints"]
    assert offers, "no window offered"
    hit("post", slots, slots, t, {}, expect=400)
    fu = "/seiapi/v3/trans/WorkOrder/{WorkOrderID}/Followup"
    path = f"/seiapi/v3/trans/WorkOrder/{wo}/Followup"
    book = {"TimeConstraints": [{"Type": "1001", "Period": offers[0]["Period"]}]}
    booked = hit("post", fu, path, t, book, {"Idempotency-Key": f"check-{wo}"}, expect=200)
    hit("post", fu, path, t, book, {"Idempotency-Key": f"check-{wo}"}, expect=200)
    other = {"TimeConstraints": [{"Type": "1001", "Period": offers[-1]["Period"]}]}
    hit("post", fu, path, t, other, {"Idempotency-Key": f"check-{wo}"}, expect=422)
    hit("post", fu, path, t, {"TimeConstraints": []}, expect=400)
    hit("get", fu, path, t, expect=200)
    hit("get", one, f"/seiapi/v3/trans/WorkOrder/{booked['OrderNum']}", t, expect=200)
    cfg = "/seiapi/v3/SysConfig/{System}"
    hit("get", cfg, "/seiapi/v3/SysConfig/mobility", a, expect=200)
    hit("get", cfg, "/seiapi/v3/SysConfig/mobility", t, expect=200)
    cat = "/seiapi/v3/trans/SystemCategory/Default/{Code}"
    hit("get", cat, "/seiapi/v3/trans/SystemCategory/Default/15", t, expect=200)
    hit("get", lst, lst + "?From=2026-01-01&Limit=5", a, expect=200)
    hit("get", "/scheduling/v1/{Kind}", "/scheduling/v1/workcenters", t, expect=200)
    hit("get", "/admin/v1/users", "/admin/v1/users", a, expect=200)
    hit("get", "/admin/v1/users", "/admin/v1/users", t, expect=403)
    hit("get", "/admin/v1/users/{UserName}", "/admin/v1/users/tech01", a, expect=200)
    hit("get", "/admin/v1/technicians", "/admin/v1/technicians", a, expect=200)
    hit("get", "/admin/v1/entity", "/admin/v1/entity", a, expect=200)
    return checked


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    base = (args[0] if args else "http://127.0.0.1:8080").rstrip("/")
    status, doc = call(base, "get", "/seiapi/v3/openapi.json")
    assert status == 200, status
    n = check_document(doc)
    print(f"openapi: {doc['openapi']} document valid, {n} operations checked")
    if "--spec-only" not in sys.argv:
        print(f"openapi: {demo_flow(base, doc)} demo answers match their schemas")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"openapi check failed: {e}", file=sys.stderr)
        sys.exit(1)
