package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/gatehouse-dev/gatehouse/sidecar/envoyconfig"
)

// newEnvoyConfigCmd is `gatehouse envoy-config`, kept for existing
// scripts: the same command as `gatehouse-sidecar envoy-config` (same
// flags, same output), with a one-line deprecation note on stderr. The
// bootstrap describes the sidecar's and the upstreams' addresses, so it
// belongs to the sidecar's binary.
func newEnvoyConfigCmd() *cobra.Command {
	cmd := envoyconfig.NewCommand()
	cmd.Short = "Deprecated: use gatehouse-sidecar envoy-config (same flags, same output)"
	cmd.PreRun = func(cmd *cobra.Command, _ []string) {
		fmt.Fprintln(cmd.ErrOrStderr(), "gatehouse envoy-config is deprecated: use gatehouse-sidecar envoy-config (same flags, same output)")
	}
	return cmd
}
