# The release-age cooldown of a uv install (src/install/gates.ts reads what this prints). Runs inside
# the install container, before anything is installed:
#   python3 -c "$uv_gate_py" CUTOFF NEWEST_FILE REQUIREMENT...   → {"before":…,"packages":[…]}
# NEWEST_FILE holds what each requirement resolves to without the cooldown (uv pip compile --no-deps).
# Each version's age is its first upload to PyPI; `before` is the cutoff, moved to just after the
# youngest exact pin (a pin is honoured as written; its dependencies resolve as of its release).
import json, re, sys, time, urllib.error, urllib.request
from datetime import datetime, timedelta, timezone

def normalise(name):
    return re.sub(r"[-_.]+", "-", name).lower()

# A flaky proxy or PyPI is retried as pip and uv retry: a network error, a 429 or a 5xx, after
# 1, 3 and 8 s. Any other answer is final.
RETRY_AFTER = [1, 3, 8]

def released(name):
    url = "https://pypi.org/pypi/%s/json" % name
    for attempt in range(len(RETRY_AFTER) + 1):
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                return json.load(response).get("releases", {})
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return {}
            if (error.code != 429 and error.code < 500) or attempt == len(RETRY_AFTER):
                raise
        except OSError:
            if attempt == len(RETRY_AFTER):
                raise
        time.sleep(RETRY_AFTER[attempt])

def first_upload(releases, version):
    uploads = [f.get("upload_time_iso_8601") for f in releases.get(version, []) if f.get("upload_time_iso_8601")]
    return min(uploads) if uploads else None

def parse_time(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))

def main(cutoff, newest_file, requirements):
    newest = {}
    for line in open(newest_file):
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)", line)
        if match:
            newest[normalise(match.group(1))] = match.group(2)
    before = parse_time(cutoff)
    packages = []
    for requirement in requirements:
        head = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(?:===?\s*([^\s,;]+)\s*$)?", requirement)
        if not head:
            continue
        name = normalise(head.group(1))
        releases = released(name)
        if head.group(2):
            at = first_upload(releases, head.group(2))
            packages.append({"name": name, "spec": requirement, "pinned": head.group(2), "time": at})
            if at and parse_time(at) + timedelta(seconds=1) > before:
                before = parse_time(at) + timedelta(seconds=1)
        else:
            version = newest.get(name)
            packages.append({"name": name, "spec": requirement, "newest": version, "time": version and first_upload(releases, version)})
    stamp = before.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    print(json.dumps({"cutoff": cutoff, "before": stamp, "packages": packages}, separators=(",", ":")))

try:
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
except (OSError, ValueError) as error:
    # One line, with urllib's reason (CERTIFICATE_VERIFY_FAILED behind a TLS-intercepting proxy).
    sys.stderr.write("mcpbox: the supply-chain check could not read PyPI: %s\n" % getattr(error, "reason", error))
    sys.exit(1)
