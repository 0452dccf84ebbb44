package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/drydock-project/drydock/internal/api"
	"github.com/drydock-project/drydock/internal/oci"
	"github.com/drydock-project/drydock/internal/store"
)

// imagesJSON is the --json schema of "drydock images" (version 1).
type imagesJSON struct {
	SchemaVersion int              `json:"schemaVersion"`
	Server        string           `json:"server"`
	Repositories  []oci.Repository `json:"repositories"`
}

func newImagesCmd(g *globals) *cobra.Command {
	var (
		server string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "images",
		Short: "List the repositories, tags and digests the server holds",
		Long: `Images lists what the drydock server holds, from its /v2/_catalog and tags
APIs: namespace (quarantine, live or other), repository, tag, kind (image, or
index with its platforms), digest and size. Sizes are config plus layers as
stored (compressed); for an index, per platform and in total. Repositories
and tags are sorted by name.

--json prints one object (schemaVersion 1):
  {"schemaVersion": 1, "server": "http://127.0.0.1:5000",
   "repositories": [
     {"namespace": "quarantine", "name": "quarantine/nginx",
      "tags": [{"tag": "1.27.1", "digest": "sha256:...",
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "kind": "index", "size": 123,
                "platforms": [{"platform": "linux/amd64", "digest": "sha256:...",
                               "mediaType": "...", "size": 61}],
                "verdict": "pass", "promoted": true,
                "error": "only set when the tag could not be read"}]}]}

Signatures, attestations, SBOMs and scan reports are listed under the tag of
the digest they belong to ("+ signature (tag)", "+ sbom (referrer)"), in both
forms: OCI 1.1 referrers and cosign's tag-scheme tags (sha256-<hex>.sig, .att,
.sbom), which are not listed as tags of their own; they have no verdict ("drydock
verify REF" checks them). In --json they are each tag's "attached" list.

VERDICT is the gate's verdict on the digest (pending, pass, fail, exempt; see
"drydock verdict"), from the server's API; "(promoted)" marks digests in
live/.`,
		Example: `  drydock images
  drydock images --json
  drydock images --server https://admin:secret@drydock.example.com`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			srv, err := parseServerFlag(server)
			if err != nil {
				return err
			}
			repos, err := oci.ListImages(cmd.Context(), srv, oci.WithLogger(log))
			if err != nil {
				return err
			}
			if repos == nil {
				repos = []oci.Repository{}
			}
			addVerdicts(cmd.Context(), log, server, repos)
			if asJSON {
				return writeJSON(g.stdout, imagesJSON{SchemaVersion: 1, Server: srv.String(), Repositories: repos})
			}
			return writeImagesTable(g, repos)
		},
	}
	addServerFlag(cmd.Flags(), &server)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (schema in the help text)")
	return cmd
}

func writeImagesTable(g *globals, repos []oci.Repository) error {
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tREPOSITORY\tTAG\tKIND\tDIGEST\tSIZE\tVERDICT")
	for _, r := range repos {
		for _, t := range r.Tags {
			if t.Error != "" && t.Digest == "" {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Namespace, r.Name, t.Tag, "error", "-", strings.ReplaceAll(t.Error, "\t", " "))
				continue
			}
			kind := t.Kind
			if t.Kind == "index" {
				kind = fmt.Sprintf("index (%d)", len(t.Platforms))
			}
			verdict := orDash(t.Verdict)
			if t.Promoted {
				verdict += " (promoted)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Namespace, r.Name, t.Tag, kind, shortDigest(t.Digest), size(t.Size), verdict)
			for _, p := range t.Platforms {
				fmt.Fprintf(tw, "\t\t\t  %s\t%s\t%s\n", p.Platform, shortDigest(p.Digest), size(p.Size))
			}
			for _, a := range t.Attached {
				fmt.Fprintf(tw, "\t\t\t  + %s (%s)\t%s\t\n", a.Class, a.Form, shortDigest(a.Digest))
			}
		}
	}
	return tw.Flush()
}

// addVerdicts fills in the gate's verdict of every listed digest, from the
// server's API; a server without the gate (or a refusal) leaves them empty.
func addVerdicts(ctx context.Context, log *slog.Logger, server string, repos []oci.Repository) {
	c, err := newAPIClient(server)
	var resp api.VerdictsResponse
	if err == nil {
		err = c.do(ctx, "GET", "/api/v1/verdicts", nil, &resp)
	}
	if err != nil {
		log.Warn("no verdicts from the server's gate", "err", err)
		return
	}
	byDigest := make(map[string]store.Image, len(resp.Images))
	for _, im := range resp.Images {
		byDigest[im.Digest] = im
	}
	for i := range repos {
		for j := range repos[i].Tags {
			t := &repos[i].Tags[j]
			if im, ok := byDigest[t.Digest]; ok {
				t.Verdict, t.Promoted = string(im.Verdict.State), im.Promoted
			}
		}
	}
}

// shortDigest abbreviates sha256:<64 hex> to sha256:<12 hex>.
func shortDigest(d string) string {
	alg, hex, ok := strings.Cut(d, ":")
	if !ok || len(hex) <= 12 {
		return d
	}
	return alg + ":" + hex[:12]
}
