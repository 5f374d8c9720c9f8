#!/bin/sh
# Regenerate examples/data/example.tar.zst, the demo archive, in the source
# side's exact format (PAX tar, objects first, manifest.json last, zstd), with
# tests/fixtures/mkarchive.py. The output is byte-for-byte reproducible for a
# given zstd version (fixed mtimes, one zstd worker).
#
#     examples/data/make-example.sh [OUT]     default: next to this script
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${1:-$here/example.tar.zst}
spec=$(mktemp "${TMPDIR:-/tmp}/trs-example-spec.XXXXXX")
trap 'rm -f "$spec"' EXIT INT TERM

# Four objects: a CSV with tags, a JSON, a text file whose name has a space
# and non-ASCII characters, and a small binary. Two targets in eu-west-1 (one
# with its own storage class) and one in us-east-1, which a service in
# eu-west-1 leaves alone.
cat >"$spec" <<'SPEC'
{
  "targets": [
    {"region": "eu-west-1", "bucket": "example-bucket"},
    {"region": "eu-west-1", "bucket": "example-archive", "storage_class": "GLACIER_IR"},
    {"region": "us-east-1", "bucket": "example-bucket-us"}
  ],
  "objects": [
    {"relative_key": "sales/2025/01/sales.csv",
     "source_bucket": "example-source", "source_prefix": "sales/2025/01",
     "object_name": "sales.csv",
     "tags": [{"team": "finance"}, {"classification": "internal"}],
     "data": "date,region,amount\n2025-01-01,eu-west-1,1200.50\n2025-01-02,us-east-1,980.00\n2025-01-03,ap-south-1,310.25\n"},
    {"relative_key": "config/settings.json",
     "source_bucket": "example-source", "source_prefix": "config",
     "object_name": "settings.json",
     "data": "{\n  \"retention_days\": 30,\n  \"compress\": true,\n  \"regions\": [\"eu-west-1\", \"us-east-1\"]\n}\n"},
    {"relative_key": "notes/caf\u00e9 menu \u2615.txt",
     "source_bucket": "example-source", "source_prefix": "notes",
     "object_name": "caf\u00e9 menu \u2615.txt",
     "tags": [{"lang": "fr"}],
     "data": "Caf\u00e9 cr\u00e8me \u2014 2,50 \u20ac\nCroissant \u2014 1,80 \u20ac\n"},
    {"relative_key": "bin/random-4k.bin",
     "source_bucket": "example-source", "source_prefix": "",
     "object_name": "random-4k.bin",
     "data_size": 4096, "data_seed": 42}
  ]
}
SPEC

python3 "$repo/tests/fixtures/mkarchive.py" "$spec" -o "$out" --level 19 --threads 1
echo "wrote $out ($(wc -c <"$out") bytes)"
