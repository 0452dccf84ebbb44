package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/drydock-project/drydock/internal/api"
	"github.com/drydock-project/drydock/internal/audit"
)

// auditPollInterval is how often "drydock audit --follow" asks a server
// for new entries once it has read them all.
const auditPollInterval = time.Second

// auditRemote decides where "drydock audit" reads: a server's API (true)
// or a local database. --server reads remotely and --data or --config
// locally (both is an error); otherwise $DRYDOCK_DATA or $DRYDOCK_CONFIG
// read locally, and $DRYDOCK_SERVER or a "drydock login" remotely; with
// none of them, the local default data directory.
func auditRemote(cmd *cobra.Command, server string) (bool, error) {
	fl := cmd.Flags()
	local := fl.Changed("data") || fl.Changed("config")
	if fl.Changed("server") {
		if local {
			return false, errors.New("--server reads a server's audit log through its API, --data and --config a local one: give one of them")
		}
		return true, nil
	}
	if local || os.Getenv("DRYDOCK_DATA") != "" || os.Getenv("DRYDOCK_CONFIG") != "" {
		return false, nil
	}
	_, from, err := resolveServer(server)
	if err != nil {
		return false, err
	}
	return from != serverFromDefault, nil
}

// auditFromServer prints the server's audit log from entry from on,
// through GET /api/v1/audit?after=..., and with follow keeps asking for
// new entries until ctx ends.
func auditFromServer(ctx context.Context, server string, from int64, follow bool, write func(*audit.Entry) error) error {
	c, err := newAPIClient(server)
	if err != nil {
		return err
	}
	after := max(from, 1) - 1
	for {
		q := url.Values{"after": {strconv.FormatInt(after, 10)}, "limit": {strconv.Itoa(api.MaxAuditLimit)}}
		var page api.AuditPage
		if err := c.do(ctx, "GET", "/api/v1/audit?"+q.Encode(), nil, &page); err != nil {
			if ctx.Err() != nil && follow {
				return nil
			}
			return fmt.Errorf("reading the audit log: %w", err)
		}
		for i := range page.Entries {
			if err := write(&page.Entries[i]); err != nil {
				return err
			}
		}
		if page.NextAfter > after {
			after = page.NextAfter
			continue // there may be more
		}
		if !follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(auditPollInterval):
		}
	}
}
