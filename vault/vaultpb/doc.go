// Package vaultpb holds the protobuf messages package vault stores in the
// replicated state (schemes, keys, tokens, idempotency records). They are
// internal to the vault but persisted and replicated, so they follow the
// public API's compatibility rules: numbers are never reused. Generated from
// records.proto by ./proto/gen.sh.
package vaultpb
