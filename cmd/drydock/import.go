package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/drydock-project/drydock/internal/api"
	"github.com/drydock-project/drydock/internal/imgref"
	"github.com/drydock-project/drydock/internal/oci"
)

func newImportCmd(g *globals) *cobra.Command {
	var (
		as, server, platform string
		allPlatforms         bool
	)
	cmd := &cobra.Command{
		Use:   "import SRC",
		Short: "Copy an image or index into the server's quarantine/ namespace",
		Long: `Import copies an image (or a multi-platform index with all its platforms) into
the drydock server as quarantine/NAME:TAG. Manifests and blobs are copied byte
for byte: the digest does not change.

SRC is one of:
  REF                         a registry reference, normalized as docker does:
                              nginx:1.27.1 is docker.io/library/nginx:1.27.1
                              (a docker:// prefix is accepted too)
  oci:DIR[:TAG]               an OCI image layout directory; TAG selects the
                              manifest annotated org.opencontainers.image.ref.name
  oci-archive:FILE[:TAG]      a tar of an OCI image layout
  docker-archive:FILE[:NAME:TAG|:@N]
                              a "docker save" / skopeo docker-archive tarball;
                              the manifest is built as skopeo builds it when it
                              copies the archive to a registry (Docker schema 2,
                              layers gzip-compressed)

NAME and TAG default to the source's: docker.io/library/nginx:1.27.1 becomes
quarantine/nginx:1.27.1, REGISTRY/org/app:v1 becomes quarantine/org/app:v1, a
layout or archive is named after its file or directory and tagged with its
ref name (or latest). --as NAME[:TAG] overrides both.

Credentials for the source registry come from the docker config
(~/.docker/config.json, $DOCKER_CONFIG, credential helpers). The server's come
from user:pass@ in --server, else from the same docker config.

Everything that can be checked is checked before the first write, and every
blob is verified against its digest while it streams; if the import fails,
what it wrote is deleted again, so no tag or manifest appears.

On success the imported reference is printed to stdout as
quarantine/NAME:TAG@DIGEST.`,
		Example: `  # from Docker Hub (library/nginx) into quarantine/nginx:1.27.1
  drydock import nginx:1.27.1

  # from another registry, all platforms of the index
  drydock import registry.example.com/org/app:v1

  # only the linux/arm64 image of an index (keeps that image's digest)
  drydock import nginx:1.27.1 --platform linux/arm64

  # an OCI layout directory, under another name
  drydock import oci:./build/layout:v1 --as myapp:v1

  # an OCI archive (tar of a layout) and a docker-archive ("docker save")
  drydock import oci-archive:./app.tar:v1
  drydock import docker-archive:./nginx.tar --as nginx:1.27.1-local
  drydock import docker-archive:./images.tar:nginx:1.27.1
  drydock import docker-archive:./images.tar:@1 --as other:v1

  # to a server elsewhere, with credentials
  drydock import nginx:1.27.1 --server https://admin:secret@drydock.example.com`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			switch {
			case platform != "" && cmd.Flags().Changed("all-platforms") && allPlatforms:
				return errors.New("--platform and --all-platforms exclude each other")
			case platform == "" && !allPlatforms:
				return errors.New("--all-platforms=false needs --platform os/arch[/variant]")
			}
			src, err := oci.ParseSource(args[0])
			if err != nil {
				return err
			}
			srv, err := parseServerFlag(server)
			if err != nil {
				return err
			}
			var copyOpts []oci.Option
			if platform != "" {
				p, err := oci.ParsePlatform(platform)
				if err != nil {
					return fmt.Errorf("--platform: %w", err)
				}
				copyOpts = append(copyOpts, oci.WithPlatform(p))
			}
			asRepo, asTag, err := parseAs(as)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			view := newProgressView(g.stderr, isTerminal(g.stderr), log)
			common := []oci.Option{oci.WithLogger(log), oci.WithProgress(view.update)}

			log.Info("opening source", "source", src.String())
			art, err := src.Open(ctx, common...)
			if err != nil {
				return err
			}
			defer art.Close()
			repo, tag := art.SuggestedName()
			if asRepo != "" {
				repo = asRepo
			}
			if asTag != "" {
				tag = asTag
			}
			if repo == "" {
				return fmt.Errorf("cannot derive an image name from %s: use --as NAME[:TAG]", src)
			}
			dst, err := srv.Tag(imgref.Quarantine+"/"+repo, tag)
			if err != nil {
				return err
			}
			log.Info("importing", "source", src.String(), "digest", art.Descriptor.Digest.String(), "destination", dst.Name())
			opts := append(append(append(common, srv.Options()...), copyOpts...), oci.WithJobs(4))
			res, err := oci.Copy(ctx, art, dst, opts...)
			view.finish()
			if err != nil {
				return err
			}
			kind := "image"
			if len(res.Platforms) > 0 {
				kind = "index"
			}
			log.Info("imported", "reference", res.Reference, "digest", res.Digest, "kind", kind,
				"platforms", strings.Join(res.Platforms, ","), "blobs", res.Blobs, "blobsExisting", res.BlobsExisting, "bytesPushed", res.BytesPushed)
			recordImportSource(ctx, log, server, dst.Context().RepositoryStr()+"@"+res.Digest, src.String())
			_, err = fmt.Fprintf(g.stdout, "%s@%s\n", dst.Context().RepositoryStr()+":"+dst.TagStr(), res.Digest)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&as, "as", "", "import as quarantine/NAME[:TAG] instead of the source's name")
	addServerFlag(f, &server)
	f.StringVar(&platform, "platform", "", "copy only this platform's image of an index: os/arch[/variant]")
	f.BoolVar(&allPlatforms, "all-platforms", true, "copy an index with all its platforms; --platform selects one instead")
	return cmd
}

// parseAs splits --as NAME[:TAG]; a quarantine/ prefix is accepted and
// dropped, other namespaces are refused.
func parseAs(as string) (repo, tag string, err error) {
	if as == "" {
		return "", "", nil
	}
	r, err := imgref.Parse(as)
	switch {
	case err != nil:
		return "", "", fmt.Errorf("--as %q: %w", as, err)
	case r.Digest != "":
		return "", "", fmt.Errorf("--as %q: give NAME[:TAG]; the digest is the source's", as)
	}
	repo, tag = r.Repository, r.Tag
	if imgref.IsQuarantine(repo) {
		repo = strings.TrimPrefix(repo, imgref.Quarantine+"/")
	}
	if imgref.IsLive(repo) {
		return "", "", fmt.Errorf("--as %q: imports land in quarantine/; live/ is reached only by promotion", as)
	}
	if err := imgref.CheckRepository(imgref.Quarantine + "/" + repo); err != nil {
		return "", "", fmt.Errorf("--as %q: %w", as, err)
	}
	return repo, tag, nil
}

// recordImportSource tells the server where an import came from: the
// gate's allowedSources rule matches it, and the audit log records the
// import. A failure is a warning: the image is imported either way, and
// its verdict fails closed under allowedSources without a source.
func recordImportSource(ctx context.Context, log *slog.Logger, server, ref, source string) {
	c, err := newAPIClient(server)
	if err == nil {
		err = c.do(ctx, "POST", "/api/v1/imports", api.ImportRequest{Reference: ref, Source: source}, nil)
	}
	if err != nil {
		log.Warn("the server did not record where the image came from (policy allowedSources will not match it)", "reference", ref, "err", err)
	}
}
