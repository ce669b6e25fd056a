#!/usr/bin/env python3
"""Kubernetes JSON schemas for kubeconform, without GitHub: from the PyPI package kubernetes-validate
(which bundles them), made standalone (each kind's schema carries the definitions it refers to).

    python3 scripts/kubernetes-schemas.py DIR   ->  DIR/<kind>-<group>-<version>.json, reused when present

Used by the export tests (test/e2e/kubernetes.test.ts): kubeconform -schema-location
'DIR/{{.ResourceKind}}{{.KindSuffix}}.json'.
"""
import json
import os
import subprocess
import sys
import tempfile
import zipfile

PACKAGE = "kubernetes-validate==1.37.0"
KUBERNETES = "v1.33.0"
KINDS = [
    "pod-v1", "persistentvolumeclaim-v1", "configmap-v1", "secret-v1", "networkpolicy-networking-v1", "service-v1", "deployment-apps-v1",
    "serviceaccount-v1", "role-rbac-v1", "rolebinding-rbac-v1",
]


def main(out: str) -> None:
    if all(os.path.exists(os.path.join(out, f"{k}.json")) for k in KINDS):
        return
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", PACKAGE, "-d", tmp], check=True, stdout=sys.stderr)
        wheel = zipfile.ZipFile(os.path.join(tmp, next(f for f in os.listdir(tmp) if f.endswith(".whl"))))
        base = f"kubernetes_validate/kubernetes-json-schema/{KUBERNETES}-local-strict/"
        definitions = json.loads(wheel.read(base + "_definitions.json"))
        defs = definitions.get("$defs") or definitions.get("definitions")
        for kind in KINDS:
            schema = json.loads(wheel.read(f"{base}{kind}.json"))
            text = json.dumps({**schema, "$defs": defs}).replace('"/api/_definitions.json#/$defs/', '"#/$defs/')
            with open(os.path.join(out, f"{kind}.json"), "w") as f:
                f.write(text)


if __name__ == "__main__":
    main(sys.argv[1])
