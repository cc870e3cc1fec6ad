#!/usr/bin/env bash
# Installs the client the way an application team would: `npm pack`, then the tarball into a fresh
# Vite project (react-ts template) and a fresh Next.js project (App Router), each with a small app
# using the hooks and the API; both must type-check and build. Needs the npm registry (npm's cache
# in ~/.npm makes reruns cheap). Keeps its directory when NOSYNTASK_KEEP_INSTALL_DIR is set.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
fixtures="$here/scripts/install-fixtures"
# Pinned so that a new release of a template cannot break CI overnight; bump them on purpose.
CREATE_VITE="create-vite@9.3.0"
CREATE_NEXT="create-next-app@16.4.3"
export NEXT_TELEMETRY_DISABLED=1 npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

work="$(mktemp -d "${TMPDIR:-/tmp}/nosyntask-install-XXXXXX")"
if [ -z "${NOSYNTASK_KEEP_INSTALL_DIR:-}" ]; then trap 'rm -rf "$work"' EXIT; else echo "keeping $work"; fi

echo "== npm pack"
(cd "$here" && npm pack --silent --pack-destination "$work" >/dev/null)
tarball="$(ls "$work"/nosyntask-client-*.tgz)"
contents="$(tar -tzf "$tarball")"
for file in package/LICENSE package/dist/cjs/index.js package/dist/esm/index.d.ts.map; do
  grep -qx "$file" <<<"$contents" || { echo "FATAL: the tarball has no ${file#package/}" >&2; exit 1; }
done
echo "packed $(basename "$tarball") ($(du -k "$tarball" | cut -f1) kB)"

echo "== Vite ($CREATE_VITE, react-ts)"
(cd "$work" && npx -y "$CREATE_VITE" vite-app --template react-ts --no-interactive --no-immediate >/dev/null)
cd "$work/vite-app"
npm install --silent
npm install --silent "$tarball"
cp "$fixtures/vite/App.tsx" src/App.tsx
npm run build # tsc -b && vite build
test -f dist/index.html

echo "== Next.js ($CREATE_NEXT, App Router)"
(cd "$work" && npx -y "$CREATE_NEXT" next-app --ts --app --no-tailwind --no-eslint --no-src-dir \
  --no-react-compiler --import-alias '@/*' --use-npm --disable-git --no-agents-md --yes >/dev/null)
cd "$work/next-app"
npm install --silent "$tarball"
rm -f app/page.module.css
cp "$fixtures/next/layout.tsx" app/layout.tsx
cp "$fixtures/next/page.tsx" app/page.tsx
cp "$fixtures/next/Jobs.tsx" app/Jobs.tsx
mkdir -p app/api/start && cp "$fixtures/next/route.ts" app/api/start/route.ts
npx tsc --noEmit
npm run build # next build: compiles, type-checks, prerenders the page
test -d .next

echo "check-install: the packed client type-checks and builds in fresh Vite and Next.js projects"
