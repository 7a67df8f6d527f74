#!/usr/bin/env bash
# Rebuild the built-in corpora under data/ from their Debian packages.
# Maintainers only: the tests and the main job use the committed files.
#
#   scripts/build-corpora.sh            # download, build, compress, compare
#
# Needs apt-get (the packages are downloaded, not installed), dpkg-deb,
# python3 and xz. The packages and versions used for the committed files
# are listed in data/LICENSES.md; the script prints the versions apt-get
# served and fails if they differ (pass ANY_VERSION=1 to rebuild anyway).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(trans-de-en dict-elements bsdgames wordnet-base)
EXPECTED="trans-de-en=1.9-6 dict-elements=20001107-a-9.1 bsdgames=2.17-29+b1 wordnet-base=1:3.0-37"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/debs" "$work/root" "$work/out"

( cd "$work/debs" && apt-get download "${PACKAGES[@]}" )
got=""
for deb in "$work"/debs/*.deb; do
    name=$(dpkg-deb -f "$deb" Package)
    version=$(dpkg-deb -f "$deb" Version)
    got="$got $name=$version"
    dpkg-deb -x "$deb" "$work/root"
done
got=$(echo "$got" | tr ' ' '\n' | sort | tr '\n' ' ' | sed 's/^ *//; s/ *$//')
want=$(echo "$EXPECTED" | tr ' ' '\n' | sort | tr '\n' ' ' | sed 's/ *$//')
echo "packages: $got"
if [ "$got" != "$want" ] && [ "${ANY_VERSION:-0}" != 1 ]; then
    echo "error: expected $want; update data/LICENSES.md and EXPECTED, or set ANY_VERSION=1" >&2
    exit 1
fi

python3 scripts/build_corpora.py "$work/root" "$work/out"

# -9e, one thread: the same input gives the same bytes with one xz version.
for name in translate qa; do
    xz -9e -T1 -c "$work/out/$name.tsv" > "data/$name.tsv.xz"
done
{
    echo "# Counts of scripts/build_corpora.py's cleaning rules (section, rule, count)."
    echo "# packages: $got"
    cat "$work/out/report.txt"
} > data/build-report.tsv
ls -l data/*.xz
git status --short data/ || true
