#!/usr/bin/env bash
# Build the Debian package: dist/authwatch_<version>_<arch>.deb.
# (nfpm v2.41.3: later versions need modules the Go proxy here does not serve.)
#   bash dist/build-deb.sh [version]
# The version defaults to the latest git tag, or 0.0.0+<commit>.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOARCH="${GOARCH:-$(go env GOARCH)}"
version="${1:-$(git describe --tags --abbrev=0 2>/dev/null || echo "0.0.0+$(git rev-parse --short HEAD)")}"
export AUTHWATCH_VERSION="${version#v}"
mkdir -p dist/build
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X authwatch/internal/app.version=$AUTHWATCH_VERSION" -o dist/build/authwatch ./cmd/authwatch
go run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.41.3 pkg --packager deb --config dist/nfpm.yaml --target dist/
ls -l dist/*.deb
