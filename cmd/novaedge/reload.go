package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/novaedge/novaedge/host/reload"
)

func newReloadCmd() *cobra.Command {
	var client *adminClient
	cmd := &cobra.Command{
		Use:   "reload",
		Short: "Make the running gateway load its resources again (as SIGHUP does)",
		Long: `Ask the running gateway, through its admin API (POST /reload), to load its
resource files again and apply them if they changed. A bad change is
rejected with every problem printed, the exit status is 1, and the running
configuration keeps serving.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return postChange(cmd, client, "/reload")
		},
	}
	client = addAdminClientFlags(cmd)
	return cmd
}

func newPluginCmd() *cobra.Command {
	var client *adminClient
	reloadCmd := &cobra.Command{
		Use:   "reload NAME",
		Short: "Build a policy's plugin anew: its module read again, fresh VMs",
		Long: `Ask the running gateway, through its admin API, to build the plugin of the
policy NAME ("namespace/name", or "name" if only one namespace has it) anew:
its module file is read again and it starts in new VMs, even if nothing
changed — the way to reset a plugin or pick up a module replaced in place.
Requests in flight finish on the old plugin, which then closes. If the new
one does not build or start, the old one keeps serving and the exit status
is 1.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "/plugins/" + url.PathEscape(args[0]) + "/reload"
			if ns, name, ok := strings.Cut(args[0], "/"); ok {
				path = "/plugins/" + url.PathEscape(ns) + "/" + url.PathEscape(name) + "/reload"
			}
			return postChange(cmd, client, path)
		},
	}
	client = addAdminClientFlags(reloadCmd)
	cmd := &cobra.Command{Use: "plugin", Short: "Act on the running gateway's plugins"}
	cmd.AddCommand(reloadCmd)
	return cmd
}

// postChange POSTs to an admin endpoint that changes the configuration and
// prints its report: every problem, then the result and the hash serving.
func postChange(cmd *cobra.Command, client *adminClient, path string) error {
	resp, err := client.do(http.MethodPost, path, 2*time.Minute) // building plugins may compile modules
	if err != nil {
		return err
	}
	body, err := readBody(resp, 4<<20)
	if err != nil {
		return err
	}
	if err := refused(resp, body); err != nil {
		return err
	}
	var rep reload.Report
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusUnprocessableEntity || json.Unmarshal(body, &rep) != nil {
		var e struct{ Error string }
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s", e.Error)
		}
		return fmt.Errorf("admin API: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	out := cmd.OutOrStdout()
	for _, p := range rep.Problems {
		fmt.Fprintln(out, p)
	}
	fmt.Fprintf(out, "%s in %s; serving %s\n", rep.Result, rep.Took, rep.Hash)
	if rep.Result == reload.Rejected {
		return exitError{}
	}
	return nil
}
