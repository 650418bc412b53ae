//go:build tools

// Package tools pins the distribution project's registry command (the loopback image registry of
// the local cluster, hack/registry.py) so `go mod tidy` keeps its deps.
package tools

import _ "github.com/distribution/distribution/v3/cmd/registry"
