//go:build tools

// Package tools pins go-containerregistry's crane command (the package step's push, the dev
// kubelet's pull) so `go mod tidy` keeps its deps.
package tools

import _ "github.com/google/go-containerregistry/cmd/crane"
