package patch

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/drydock-project/drydock/internal/imgref"
	"github.com/drydock-project/drydock/internal/oci"
	"github.com/drydock-project/drydock/internal/patch/backend"
)

// Run patches req.Image as req says and writes the result. Nothing to
// patch is success: the Result says why and nothing is written (unless
// req.Force). A refusal names its cause: ErrInvalidRequest, ErrEndOfLife,
// ErrUnsupported, ErrHostileImage, ErrScripts (a *backend.ScriptError),
// errors of the registry or the archive.
func Run(ctx context.Context, req Request, opts ...Option) (*Result, error) {
	start := time.Now()
	e, only, err := prepare(ctx, &req, opts)
	if err != nil {
		return nil, err
	}
	o := e.o
	src, srcOpts, err := o.source(req.Image)
	if err != nil {
		return nil, err
	}
	dest, destOpts, err := o.destination(&req, src)
	if err != nil {
		return nil, err
	}
	art, err := src.Open(ctx, append(srcOpts, oci.WithLogger(o.log))...)
	if err != nil {
		return nil, err
	}
	defer art.Close()
	b, err := e.build(ctx, art.Image, art.Index, only)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	res := &b.Result
	if out := b.artifact(); out != nil && !req.DryRun {
		o.progress(Event{Phase: "write"})
		if err := write(ctx, out, dest, append(destOpts, oci.WithLogger(o.log))); err != nil {
			return nil, err
		}
		res.Output = dest
	}
	o.progress(Event{Phase: "done"})
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// Check reports what is wrong with req in itself, before anything is read:
// an error wrapping ErrInvalidRequest, or nil.
func Check(req Request) error {
	if err := req.normalize(); err != nil {
		return err
	}
	_, err := req.platform()
	return err
}

// platform parses the request's platform; nil means every platform.
func (r *Request) platform() (*v1.Platform, error) {
	if r.Platform == "" {
		return nil, nil
	}
	p, err := oci.ParsePlatform(r.Platform)
	if err != nil {
		return nil, fmt.Errorf("%w: platform: %w", ErrInvalidRequest, err)
	}
	return &p, nil
}

// normalize checks the request and fills its defaults.
func (r *Request) normalize() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidRequest, fmt.Sprintf(format, args...))
	}
	if strings.TrimSpace(r.Image) == "" {
		return bad("no image")
	}
	switch r.Mode {
	case UpdateAll, VulnerableOnly:
		if len(r.Packages) > 0 {
			return bad("mode %s takes no packages (they are for mode %s)", r.Mode, FromReport)
		}
	case FromReport:
		if r.Packages == nil {
			r.Packages = map[string]string{}
		}
		for _, n := range slices.Sorted(maps.Keys(r.Packages)) {
			if !pkgNameRE.MatchString(n) {
				return bad("package name %q is not valid", truncate(n, 80))
			}
			if v := r.Packages[n]; len(v) > 256 || strings.ContainsAny(v, " \t\n\x00") {
				return bad("package %s: version %q is not valid", n, truncate(v, 80))
			}
		}
	case "":
		return bad("no mode: say what to update (%s, %s or %s)", UpdateAll, VulnerableOnly, FromReport)
	default:
		return bad("mode %q: want %s, %s or %s", r.Mode, UpdateAll, VulnerableOnly, FromReport)
	}
	m, err := backend.ParseSandboxMode(string(r.Sandbox))
	if err != nil {
		return bad("%v", err)
	}
	r.Sandbox = m
	if r.Tag != "" && !imgref.ValidTag(r.Tag) {
		return bad("tag %q is not a valid tag", r.Tag)
	}
	return nil
}

// pkgNameRE accepts the package names of dpkg, apk and rpm.
var pkgNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9+._~^-]{0,255}$`)

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// ServerName reports whether image names an image of the drydock server
// (in its quarantine or live namespace) rather than a registry reference
// or a local layout or archive.
func ServerName(image string) bool {
	return strings.Contains(image, "/") && (imgref.IsQuarantine(image) || imgref.IsLive(image))
}

// source parses the input and the options to read it with.
func (o *options) source(image string) (oci.Source, []oci.Option, error) {
	if !ServerName(image) {
		src, err := oci.ParseSource(image)
		if err != nil {
			return src, nil, fmt.Errorf("%w: image: %w", ErrInvalidRequest, err)
		}
		return src, o.regOpts, nil
	}
	ref, err := o.serverRef(image)
	if err != nil {
		return oci.Source{}, nil, err
	}
	return oci.Source{Kind: oci.KindRegistry, Ref: ref, Index: -1}, o.srvOpts, nil
}

// serverRef is image (quarantine/... or live/...) on the server.
func (o *options) serverRef(image string) (name.Reference, error) {
	if o.server == nil {
		return nil, fmt.Errorf("%w: %s is an image of the drydock server, and no server is configured", ErrInvalidRequest, image)
	}
	var nopts []name.Option
	if o.server.Insecure {
		nopts = append(nopts, name.Insecure)
	}
	ref, err := name.ParseReference(o.server.Registry.RegistryStr()+"/"+image, nopts...)
	if err != nil {
		return nil, fmt.Errorf("%w: image %q: %w", ErrInvalidRequest, image, err)
	}
	return ref, nil
}

// destination decides where the result goes, and the options to write it
// with. A patched image is a new image: on the drydock server it enters
// through quarantine/, never live/.
func (o *options) destination(req *Request, src oci.Source) (string, []oci.Option, error) {
	tag := req.Tag
	if tag == "" {
		orig := "latest"
		if t, ok := src.Ref.(name.Tag); ok && src.Kind == oci.KindRegistry {
			orig = t.TagStr()
		} else if src.Tag != "" {
			orig = src.Tag
		}
		tag = orig + "-patched"
		if !imgref.ValidTag(tag) {
			return "", nil, fmt.Errorf("%w: the default tag %q is not valid: give a tag", ErrInvalidRequest, tag)
		}
	}
	out := req.Output
	switch {
	case out == "":
	case ServerName(out) && imgref.IsLive(out):
		return "", nil, fmt.Errorf("%w: output %s: a patched image enters the server through quarantine/, never live/ (it is promoted when it passes the gate)", ErrInvalidRequest, out)
	case ServerName(out):
		ref, err := o.serverRef(withTag(out, tag))
		if err != nil {
			return "", nil, err
		}
		return ref.String(), o.srvOpts, nil
	case strings.HasPrefix(out, "oci:"):
		if strings.Count(out, ":") == 1 {
			out += ":" + tag
		}
		return out, nil, nil
	case strings.HasPrefix(out, "docker-archive:"):
		return out, nil, nil
	default:
		if _, err := name.ParseReference(out); err != nil {
			return "", nil, fmt.Errorf("%w: output %q: %w", ErrInvalidRequest, out, err)
		}
		return withTag(out, tag), o.regOpts, nil
	}
	switch src.Kind {
	case oci.KindRegistry:
		if ServerName(req.Image) {
			repo := imgref.Rebase(src.Ref.Context().RepositoryStr(), imgref.Quarantine)
			ref, err := o.serverRef(repo + ":" + tag)
			if err != nil {
				return "", nil, err
			}
			return ref.String(), o.srvOpts, nil
		}
		return src.Ref.Context().Tag(tag).String(), o.regOpts, nil
	case oci.KindOCILayout:
		return "oci:" + src.Path + ":" + tag, nil, nil
	}
	return "", nil, fmt.Errorf("%w: %s input: say where the patched image goes (--output REF, oci:DIR[:TAG] or docker-archive:FILE)", ErrInvalidRequest, src.Kind)
}

// withTag adds tag to a repository name that has neither tag nor digest.
func withTag(ref, tag string) string {
	last := ref[strings.LastIndex(ref, "/")+1:]
	if strings.Contains(last, ":") || strings.Contains(last, "@") {
		return ref
	}
	return ref + ":" + tag
}
