// Command registry is the distribution project's registry command with only what the local
// cluster's registry uses (hack/registry.py: filesystem storage, no auth, no proxy). Upstream's
// cmd/registry also links the Azure, GCS and S3 storage drivers; their SDKs were most of its
// build (112 s against 64 s from an empty build cache, 2026-12-03).
package main

import (
	"fmt"
	"os"

	"github.com/distribution/distribution/v3/registry"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
)

func main() {
	if err := registry.RootCmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
