// Command demo-services runs the API gateway example's demo services
// (users on 127.0.0.1:18081, orders on :18082, products on :18083) until
// interrupted, for running them apart from the gateway:
//
//	go run ./examples/api-gateway/demo-services [-only users,orders]
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	apigateway "github.com/novaedge/novaedge/examples/api-gateway"
)

func main() {
	only := flag.String("only", "", "comma-separated services to run (default: all of users,orders,products)")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))

	svcs := apigateway.Services()
	if *only != "" {
		want := strings.Split(*only, ",")
		for _, w := range want {
			if !slices.ContainsFunc(svcs, func(s apigateway.Service) bool { return s.Name == w }) {
				fmt.Fprintf(os.Stderr, "demo-services: -only: no service %q (have users, orders, products)\n", w)
				os.Exit(2)
			}
		}
		svcs = slices.DeleteFunc(svcs, func(s apigateway.Service) bool { return !slices.Contains(want, s.Name) })
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	stop, err := apigateway.StartServices(ctx, svcs, logger)
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo-services:", err)
		os.Exit(1)
	}
	<-ctx.Done()
	logger.Info("stopping")
	stop()
}
