//go:build tools

// Package tools pins the Kueue controller manager so `go mod tidy` keeps its deps.
package tools

import _ "sigs.k8s.io/kueue/cmd/kueue"
