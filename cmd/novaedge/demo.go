package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/novaedge/novaedge/configs"
	apigateway "github.com/novaedge/novaedge/examples/api-gateway"
)

func newDemoCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the reference API gateway on localhost with three demo services",
		Long: `Run the reference use case (examples/api-gateway) on localhost: three demo
services (users, orders, products on 127.0.0.1:18081-18083) and the gateway on
127.0.0.1:8080, from the resources embedded in the binary. Ctrl-C stops all.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := loadSettings(cmd)
			if err != nil {
				return err
			}
			logger, err := newLogger(cmd.ErrOrStderr(), s.LogLevel, s.LogFormat)
			if err != nil {
				return err
			}
			stop, err := apigateway.StartServices(cmd.Context(), apigateway.Services(), logger)
			if err != nil {
				return err
			}
			defer stop()
			printDemoHelp(cmd.OutOrStdout(), s.Admin)
			load := func() (*configs.Snapshot, error) { return configs.LoadFiles(apigateway.Files()) }
			return serve(cmd.Context(), s, logger, load)
		},
	}
	addSettingsFlags(cmd)
	return cmd
}

func printDemoHelp(w io.Writer, admin string) {
	fmt.Fprintf(w, `
NovaEdge demo: the reference API gateway on http://localhost:8080
  (users, orders and products demo services on 127.0.0.1:18081-18083)

Try, in another terminal:
  curl -s localhost:8080/api/v1/users/42                      # → users service (P2C)
  curl -s -H 'Host: api.example.com' localhost:8080/api/v1/orders   # → orders (LeastConn)
  curl -s localhost:8080/api/v1/products                      # → products, GET only
  curl -si -X POST localhost:8080/api/v1/products             # → 404 JSON: no route
  curl -si localhost:8080/api/v1/usersX                       # → 404: prefixes match whole segments
  head -c 2000000 /dev/zero | curl -si --data-binary @- localhost:8080/api/v1/users   # → 413 (1Mi limit)
  curl -N localhost:8080/api/v1/users/sse?n=5                 # → server-sent events, streamed
  go run ./cmd/novaedge status                                # the running gateway, as tables
  curl -s %[1]s/status                                  # the admin API (also /config, /healthz, /readyz)

Walk-through: examples/api-gateway/README.md. Ctrl-C stops everything.

`, admin)
}
