package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/novaedge/novaedge/host/admin"
)

func newReloadCmd() *cobra.Command {
	var adminAddr string
	cmd := &cobra.Command{
		Use:   "reload",
		Short: "Make the running gateway load its resources again (as SIGHUP does)",
		Long: `Ask the running gateway, through its admin API (POST /reload), to load its
resource files again and apply them if they changed. A bad change is
rejected with every problem printed, the exit status is 1, and the running
configuration keeps serving.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := &http.Client{Timeout: 2 * time.Minute} // building plugins may compile modules
			resp, err := c.Post("http://"+adminAddr+"/reload", "application/json", nil)
			if err != nil {
				return fmt.Errorf("cannot reach the admin API at %s (is novaedge running? --admin sets the address): %w", adminAddr, err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
			if err != nil {
				return err
			}
			var rep admin.ReloadReport
			if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusUnprocessableEntity || json.Unmarshal(body, &rep) != nil {
				return fmt.Errorf("admin API: %s: %s", resp.Status, strings.TrimSpace(string(body)))
			}
			out := cmd.OutOrStdout()
			for _, p := range rep.Problems {
				fmt.Fprintln(out, p)
			}
			fmt.Fprintf(out, "%s; serving %s\n", rep.Result, rep.Hash)
			if rep.Result == admin.ReloadRejected {
				return exitError{}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&adminAddr, "admin", defaultAdmin, "admin API address")
	return cmd
}
