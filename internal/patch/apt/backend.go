package apt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/drydock-project/drydock/internal/inventory"
	"github.com/drydock-project/drydock/internal/osinfo"
	"github.com/drydock-project/drydock/internal/patch/apt/archive"
	"github.com/drydock-project/drydock/internal/patch/apt/dpkg"
	"github.com/drydock-project/drydock/internal/patch/apt/maintscript"
	"github.com/drydock-project/drydock/internal/patch/apt/resolve"
	"github.com/drydock-project/drydock/internal/patch/backend"
	"github.com/drydock-project/drydock/internal/patch/layer"
	"github.com/drydock-project/drydock/internal/version"
)

// Backend is the Debian-family patch backend (backend.Backend): dpkg and
// apt's repositories, for Debian, Ubuntu and their derivatives, distroless
// images (status.d) included.
type Backend struct {
	opts []archive.Option
}

// NewBackend returns the backend; opts (an HTTP client, a clock) apply to
// every session's archive client, after the ones a Target implies.
func NewBackend(opts ...archive.Option) *Backend { return &Backend{opts: opts} }

// Ecosystem is "deb".
func (*Backend) Ecosystem() string { return version.EcosystemDeb }

// Needs picks the files a patch reads from the image: the package
// database, apt's configuration and keys, configuration files, CA
// certificates (a few hundred KB).
func (*Backend) Needs(p string) bool {
	for _, pre := range []string{"var/lib/dpkg/", "etc/", "usr/share/keyrings/", "usr/lib/os-release",
		"usr/share/ca-certificates/", "usr/local/share/ca-certificates/", "usr/sbin/update-ca-certificates",
		"var/cache/debconf/config.dat"} {
		if strings.HasPrefix(p, pre) {
			return true
		}
	}
	return false
}

// Arch maps an OCI platform to its Debian architecture name.
func Arch(p v1.Platform) (string, error) {
	switch p.Architecture {
	case "amd64", "arm64", "s390x", "riscv64":
		return p.Architecture, nil
	case "ppc64le":
		return "ppc64el", nil
	case "mips64le":
		return "mips64el", nil
	case "386":
		return "i386", nil
	case "arm":
		switch p.Variant {
		case "v7", "":
			return "armhf", nil
		case "v5", "v6":
			return "armel", nil
		}
	}
	return "", fmt.Errorf("architecture %s is not a Debian architecture", p.String())
}

// Open reads the image's dpkg database and apt sources.
func (b *Backend) Open(ctx context.Context, t backend.Target) (backend.Session, error) {
	if t.OS.Family != osinfo.FamilyDebian {
		return nil, fmt.Errorf("apt: %s is not a Debian-family OS", t.OS.ID)
	}
	arch, err := Arch(t.Platform)
	if err != nil {
		return nil, err
	}
	log := t.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	progress := t.Progress
	if progress == nil {
		progress = func(backend.Event) {}
	}
	dpkg, err := inventory.NewDpkg()
	if err != nil {
		return nil, err
	}
	installed, err := dpkg.Analyze(ctx, t.FS)
	if err != nil {
		return nil, fmt.Errorf("read the dpkg database: %w", err)
	}
	var opts []archive.Option
	r := t.Repositories
	for _, o := range []struct {
		set bool
		opt archive.Option
	}{
		{r.Mirror != "", archive.WithMirror(r.Mirror)},
		{r.SecurityMirror != "", archive.WithSecurityMirror(r.SecurityMirror)},
		{r.HostKeyring != "", archive.WithHostKeyring(r.HostKeyring)},
		{r.InsecureSkipVerify, archive.WithInsecureSkipVerify()},
		{t.CacheDir != "", archive.WithCacheDir(t.CacheDir)},
		{t.CacheSize > 0, archive.WithCacheSize(t.CacheSize)},
		{t.HTTP != nil, archive.WithHTTPClient(t.HTTP)},
		{true, archive.WithLogger(log)},
	} {
		if o.set {
			opts = append(opts, o.opt)
		}
	}
	repo, err := archive.Open(ctx, t.FS, t.OS, arch, append(opts, b.opts...)...)
	if err != nil {
		return nil, err
	}
	return &session{t: t, arch: arch, repo: repo, installed: installed, log: log, progress: progress}, nil
}

// downloads is how many packages are fetched at once: two overlap the
// network with xz; with four, the bench's cold peak RSS was 290 MiB
// (over the 300 MB goal), with two 269 MiB.
const downloads = 2

type session struct {
	t         backend.Target
	arch      string
	repo      *archive.Repo
	installed []inventory.Package
	log       *slog.Logger
	progress  func(backend.Event)
	steps     map[string]*resolve.Step // by package, after Resolve
}

func (s *session) Installed() []inventory.Package { return s.installed }

func (s *session) Refresh(ctx context.Context) error { return s.repo.Update(ctx) }

func (s *session) Updates() []backend.Update {
	cands := s.repo.Candidates(s.installed)
	out := make([]backend.Update, len(cands))
	for i, c := range cands {
		out[i] = backend.Update{Name: c.Name, Arch: c.Arch, Installed: c.Installed, Candidate: c.Candidate.Version, Suite: c.Candidate.Suite}
	}
	return out
}

func (s *session) Resolve(_ context.Context, want []string) ([]backend.Change, error) {
	res, err := resolve.ResolveCatalog(s.arch, s.installed, s.repo, want)
	if err != nil {
		return nil, err
	}
	s.steps = map[string]*resolve.Step{}
	out := make([]backend.Change, len(res.Steps))
	for i := range res.Steps {
		st := &res.Steps[i]
		s.steps[st.Package] = st
		out[i] = backend.Change{Package: st.Package, From: st.From, To: st.To, Suite: st.Suite, Reason: st.Reason,
			Size: st.Candidate.Size, URL: st.Candidate.URL()}
	}
	return out, nil
}

func (s *session) Apply(ctx context.Context, changes []backend.Change, cs *layer.Changeset) (*backend.Applied, error) {
	res := &backend.Applied{Timings: map[string]time.Duration{}}
	start := time.Now()
	steps := make([]*resolve.Step, len(changes))
	var total, done int64
	for i, c := range changes {
		st := s.steps[c.Package]
		if st == nil || st.To != c.To {
			return nil, fmt.Errorf("apt: %s %s was not resolved by this session", c.Package, c.To)
		}
		steps[i] = st
		total += st.Candidate.Size
	}
	debs := make([]string, len(steps))  // as the archive serves them
	plain := make([]string, len(steps)) // decompressed, to unpack
	// Two at a time: each is a round trip to the mirror, then xz to
	// decompress, and one waits on the network while another uses a core.
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(downloads)
	for i, st := range steps {
		g.Go(func() error {
			mu.Lock()
			s.progress(backend.Event{Phase: "download", Package: st.Package, Done: done, Total: total})
			mu.Unlock()
			var err error
			if debs[i], err = s.repo.FetchDeb(gctx, &st.Candidate); err != nil {
				return err
			}
			if plain[i], err = s.repo.FetchPlainDeb(gctx, &st.Candidate); err != nil {
				return err
			}
			mu.Lock()
			done += st.Candidate.Size
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	s.progress(backend.Event{Phase: "download", Done: done, Total: total})
	res.Timings["download"] = time.Since(start)

	start = time.Now()
	s.progress(backend.Event{Phase: "unpack"})
	mtime, err := newestMtime(debs)
	if err != nil {
		return nil, err
	}
	res.Mtime = mtime
	u, err := dpkg.NewUnpacker(s.t.FS, s.arch, cs, mtime)
	if err != nil {
		return nil, err
	}
	var installed []*dpkg.Installed
	for i, st := range steps {
		in, err := u.Install(ctx, dpkg.Install{Name: st.Package, Version: st.To, From: st.From, Deb: plain[i]})
		if err != nil {
			return nil, err
		}
		installed = append(installed, in)
	}
	if err := u.Finish(); err != nil {
		return nil, err
	}
	res.Timings["unpack"] = time.Since(start)

	start = time.Now()
	s.progress(backend.Event{Phase: "scripts"})
	res.Scripts, err = maintscript.Run(ctx, maintscript.Input{
		Image: s.t.Image, FS: s.t.FS, Arch: s.arch, Platform: s.t.Platform, Changes: cs, Installed: installed,
		Distroless: u.Distroless(), Mtime: mtime, TempDir: s.t.TempDir, Sandbox: s.t.Sandbox, Log: s.log,
	})
	res.Timings["scripts"] = time.Since(start)
	if err != nil {
		return res, err
	}
	return res, nil
}

func (s *session) Close() error { return s.repo.Close() }

// newestMtime is the time given to generated files: the newest file time
// of the installed packages, so that it depends only on the inputs.
func newestMtime(debs []string) (time.Time, error) {
	var t time.Time
	for _, d := range debs {
		m, err := dpkg.DebMtime(d)
		if err != nil {
			return t, err
		}
		if m.After(t) {
			t = m
		}
	}
	if t.IsZero() {
		return t, errors.New("apt: no package to date the layer by")
	}
	return t.UTC().Truncate(time.Second), nil
}
