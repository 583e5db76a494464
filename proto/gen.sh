#!/usr/bin/env bash
# Regenerates every .proto in the repository with pinned generators.
# protoc itself comes from Debian (protobuf-compiler, 3.21); the Go plugins are
# installed at the exact versions below into bin/tools, never taken from PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.6.0
TOOLS="$PWD/bin/tools"

if ! command -v protoc >/dev/null; then
  echo "protoc missing: apt-get install -y protobuf-compiler" >&2
  exit 1
fi
mkdir -p "$TOOLS"
GOBIN="$TOOLS" go install "google.golang.org/protobuf/cmd/protoc-gen-go@${PROTOC_GEN_GO_VERSION}"
GOBIN="$TOOLS" go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@${PROTOC_GEN_GO_GRPC_VERSION}"

# Every directory holding .proto files is generated in place (paths=source_relative).
mapfile -t files < <(git ls-files '*.proto'; git ls-files --others --exclude-standard '*.proto')
[ ${#files[@]} -gt 0 ] || { echo "no .proto files"; exit 0; }
for f in "${files[@]}"; do
  PATH="$TOOLS:$PATH" protoc -I . -I /usr/include \
    --go_out=. --go_opt=paths=source_relative \
    --go-grpc_out=. --go-grpc_opt=paths=source_relative \
    "$f"
done
echo "generated: ${files[*]}"
