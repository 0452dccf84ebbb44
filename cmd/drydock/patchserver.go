package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/drydock-project/drydock/internal/api"
	"github.com/drydock-project/drydock/internal/patch"
	"github.com/drydock-project/drydock/internal/patch/patchjob"
)

// runPatchOnServer submits req to the server (POST /api/v1/patch), follows
// the job's progress and prints its result as a local patch would.
func runPatchOnServer(cmd *cobra.Command, g *globals, f *patchFlags, req patch.Request) error {
	if !patch.ServerName(req.Image) {
		return fmt.Errorf("--on-server patches images of the server: quarantine/NAME[:TAG] or live/NAME[:TAG], not %q", req.Image)
	}
	log, err := g.logger()
	if err != nil {
		return err
	}
	c, err := newAPIClient(f.server)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	var acc api.PatchAccepted
	if err := c.do(ctx, "POST", "/api/v1/patch", api.PatchRequest{Request: req}, &acc); err != nil {
		return err
	}
	log.Info("patch job submitted", "job", acc.Job, "status", acc.Status)
	progress := patchProgress(g, log)
	seen := 0
	for {
		var st patchjob.Status
		if err := c.do(ctx, "GET", acc.Status, nil, &st); err != nil {
			return err
		}
		if st.Progress != nil {
			for ; seen < len(st.Progress.Phases); seen++ {
				progress(patch.Event{Phase: st.Progress.Phases[seen]})
			}
		}
		switch st.State {
		case patchjob.StateSucceeded:
			if st.Result == nil {
				return fmt.Errorf("patch job %d ended without a result", st.ID)
			}
			return printPatchSummary(g.stdout, f.format, st.Result)
		case patchjob.StateFailed:
			if st.Error == "" {
				st.Error = "failed"
			}
			return fmt.Errorf("patch job %d: %w", st.ID, errors.New(st.Error))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("patch job %d goes on on the server (%s): %w", acc.Job, acc.Status, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}
