package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/novaedge/novaedge/host/proxy"
	"github.com/novaedge/novaedge/host/reload"
)

func newStatusCmd() *cobra.Command {
	var client *adminClient
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Print the running gateway's VIPs, gateways, routes, backends and policies",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := client.do(http.MethodGet, "/status", 5*time.Second)
			if err != nil {
				return err
			}
			body, err := readBody(resp, 16<<20)
			if err != nil {
				return err
			}
			if err := refused(resp, body); err != nil {
				return err
			}
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("admin API: %s: %s", resp.Status, strings.TrimSpace(string(body)))
			}
			var st proxy.Status
			if err := json.Unmarshal(body, &st); err != nil {
				return fmt.Errorf("admin API: %w", err)
			}
			printStatus(cmd.OutOrStdout(), &st)
			var ch struct {
				Reload struct{ Last, LastRejected *reload.Report }
			}
			if json.Unmarshal(body, &ch) == nil {
				printChanges(cmd.OutOrStdout(), ch.Reload.Last, ch.Reload.LastRejected)
			}
			return nil
		},
	}
	client = addAdminClientFlags(cmd)
	return cmd
}

// printStatus prints the tables as `kubectl get` would.
func printStatus(out io.Writer, st *proxy.Status) {
	tw := tabwriter.NewWriter(out, 2, 4, 3, ' ', 0)
	section := func(title, header string) {
		fmt.Fprintf(tw, "\n%s\n%s\n", title, header)
	}
	fmt.Fprintf(tw, "CONFIG HASH\t%s\n", st.Hash)
	if len(st.VIPs) > 0 {
		section("VIPS", "NAME\tADDRESS\tMODE\tSTATE")
		for _, v := range st.VIPs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", v.Name, v.Address, v.Mode, v.State)
		}
	}
	section("GATEWAYS", "NAMESPACE\tNAME\tVIP REF\tLISTENER\tPROTOCOL\tPORT\tADDRESS\tROUTES\tSTATE")
	for _, g := range st.Gateways {
		for _, l := range g.Listeners {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d\t%s\n", g.Namespace, g.Name, dash(g.VIPRef), l.Name, l.Protocol, l.Port, dash(l.Address), l.Routes, l.State)
		}
	}
	section("ROUTES", "NAMESPACE\tNAME\tHOSTNAMES\tRULES\tBACKENDS\tATTACHED")
	for _, r := range st.Routes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\n", r.Namespace, r.Name, dash(strings.Join(r.Hostnames, ",")), r.Rules, dash(strings.Join(r.Backends, ",")), r.Attached)
	}
	section("BACKENDS", "NAMESPACE\tNAME\tLB POLICY\tHEALTHY\tENDPOINTS")
	for _, b := range st.Backends {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\n", b.Namespace, b.Name, b.LBPolicy, b.Healthy, b.Total, endpointList(b))
	}
	section("POLICIES", "NAMESPACE\tNAME\tTYPE\tTARGET\tSTATE\tMODULE\tVMS\tMEMORY\tCALLS\tFAILURES")
	for _, p := range st.Policies {
		mod, vms, mem, calls, fails := "-", "-", "-", "-", "-"
		if s := p.Plugin; s != nil {
			mod = s.Module
			if len(mod) > 12 {
				mod = mod[:12]
			}
			vms, mem = fmt.Sprint(s.VMs), fmt.Sprintf("%.1fMi", float64(s.MemoryBytes)/(1<<20))
			calls, fails = fmt.Sprint(s.Calls), fmt.Sprint(s.Failures)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Namespace, p.Name, p.Type, p.Target, p.State, mod, vms, mem, calls, fails)
	}
	tw.Flush()
	if len(st.Inactive) > 0 {
		fmt.Fprintf(out, "\nNOT ACTIVE YET\n")
		for _, n := range st.Inactive {
			fmt.Fprintf(out, "  %s\n", n.String())
		}
	}
}

// printChanges prints the last configuration change and the last one
// rejected, with its problems.
func printChanges(out io.Writer, last, rejected *reload.Report) {
	if last == nil && rejected == nil {
		return
	}
	fmt.Fprintf(out, "\nCHANGES\n")
	line := func(what string, r *reload.Report) {
		fmt.Fprintf(out, "  %s: %s from %s at %s (took %s)\n", what, r.Result, r.Source, r.At.Local().Format(time.DateTime), r.Took)
	}
	if last != nil {
		line("last", last)
	}
	if rejected != nil && (last == nil || !rejected.At.Equal(last.At)) {
		line("last rejected", rejected)
	}
	if rejected != nil {
		for _, p := range rejected.Problems {
			fmt.Fprintf(out, "    %s\n", p)
		}
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// endpointList shows each endpoint with its state.
func endpointList(b proxy.BackendStatus) string {
	if len(b.Detail.Endpoints) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(b.Detail.Endpoints))
	for _, ep := range b.Detail.Endpoints {
		state := "healthy"
		switch {
		case ep.Ejected:
			state = "ejected"
		case !ep.Healthy:
			state = "unhealthy"
		}
		parts = append(parts, ep.Address+"("+state+")")
	}
	return strings.Join(parts, ",")
}
