package vulndb

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The OCI artifact that carries a database.
const (
	ArtifactType   = "application/vnd.drydock.vulndb.v1"
	LayerMediaType = "application/vnd.drydock.vulndb.layer.v1.sqlite+gzip"

	AnnotationBuiltAt       = "org.drydock.vulndb.built-at"
	AnnotationSchemaVersion = "org.drydock.vulndb.schema-version"
	AnnotationSources       = "org.drydock.vulndb.sources"
	AnnotationSHA256        = "org.drydock.vulndb.sqlite.sha256"
	annotationCreated       = "org.opencontainers.image.created"
	annotationTitle         = "org.opencontainers.image.title"
	emptyConfigMediaType    = "application/vnd.oci.empty.v1+json"
)

// BundleOption configures Push and Pull.
type BundleOption func(*bundleConfig) error

type bundleConfig struct {
	remote []remote.Option
}

// WithRemoteOptions adds go-containerregistry remote options (transport,
// authentication, ...). By default credentials come from the Docker
// keychain.
func WithRemoteOptions(opts ...remote.Option) BundleOption {
	return func(c *bundleConfig) error { c.remote = append(c.remote, opts...); return nil }
}

func bundleSetup(ctx context.Context, ref string, opts []BundleOption) (name.Reference, []remote.Option, error) {
	c := &bundleConfig{}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, nil, err
		}
	}
	r, err := parseRef(ref)
	if err != nil {
		return nil, nil, err
	}
	ro := append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}, c.remote...)
	return r, ro, nil
}

// parseRef parses REF, allowing plain HTTP for an "http://" prefix and for
// loopback registries.
func parseRef(ref string) (name.Reference, error) {
	var nopts []name.Option
	if s, ok := strings.CutPrefix(ref, "http://"); ok {
		ref = s
		nopts = append(nopts, name.Insecure)
	} else if s, ok := strings.CutPrefix(ref, "https://"); ok {
		ref = s
	} else if host, _, _ := strings.Cut(ref, "/"); isLoopback(host) {
		nopts = append(nopts, name.Insecure)
	}
	r, err := name.ParseReference(ref, nopts...)
	if err != nil {
		return nil, fmt.Errorf("parsing reference %q: %w", ref, err)
	}
	return r, nil
}

func isLoopback(hostport string) bool {
	h, _, err := net.SplitHostPort(hostport)
	if err != nil {
		h = hostport
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// rawManifest is a manifest remote.Put can write.
type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }

// fileLayer is a compressed layer read from a file.
type fileLayer struct {
	path   string
	digest v1.Hash
	size   int64
}

func (l *fileLayer) Digest() (v1.Hash, error)             { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)             { return l.digest, nil }
func (l *fileLayer) Size() (int64, error)                 { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error)  { return LayerMediaType, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)   { return os.Open(l.path) }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) { return nil, errors.New("not supported") }

// Push stores the database at dbPath in a registry as an OCI artifact
// (ArtifactType, one gzip layer, annotations with the build time, schema
// version and sources) and returns the manifest digest.
func Push(ctx context.Context, dbPath, ref string, opts ...BundleOption) (v1.Hash, error) {
	r, ro, err := bundleSetup(ctx, ref, opts)
	if err != nil {
		return v1.Hash{}, err
	}
	db, err := Open(dbPath)
	if err != nil {
		return v1.Hash{}, err
	}
	meta := db.Meta()
	db.Close()

	tmp, err := os.CreateTemp(filepath.Dir(dbPath), ".push-*.gz")
	if err != nil {
		return v1.Hash{}, fmt.Errorf("compressing database: %w", err)
	}
	defer os.Remove(tmp.Name())
	sum, err := compress(dbPath, tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return v1.Hash{}, fmt.Errorf("compressing database: %w", err)
	}
	f, err := os.Open(tmp.Name())
	if err != nil {
		return v1.Hash{}, fmt.Errorf("compressing database: %w", err)
	}
	digest, size, err := v1.SHA256(f)
	f.Close()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("hashing bundle: %w", err)
	}
	layer := &fileLayer{path: tmp.Name(), digest: digest, size: size}
	config := static.NewLayer([]byte("{}"), emptyConfigMediaType)
	if err := remote.WriteLayer(r.Context(), layer, ro...); err != nil {
		return v1.Hash{}, fmt.Errorf("pushing database to %s: %w", ref, err)
	}
	if err := remote.WriteLayer(r.Context(), config, ro...); err != nil {
		return v1.Hash{}, fmt.Errorf("pushing database to %s: %w", ref, err)
	}
	cd, _ := config.Digest()
	var names []string
	for _, s := range meta.Sources {
		names = append(names, s.Name)
	}
	built := meta.BuiltAt.UTC().Format(time.RFC3339)
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  ArtifactType,
		Config:        v1.Descriptor{MediaType: emptyConfigMediaType, Digest: cd, Size: 2, Data: []byte("{}")},
		Layers: []v1.Descriptor{{MediaType: LayerMediaType, Digest: digest, Size: size,
			Annotations: map[string]string{annotationTitle: filepath.Base(dbPath) + ".gz"}}},
		Annotations: map[string]string{
			annotationCreated:       built,
			AnnotationBuiltAt:       built,
			AnnotationSchemaVersion: fmt.Sprint(meta.SchemaVersion),
			AnnotationSources:       strings.Join(names, ","),
			AnnotationSHA256:        sum,
		},
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := remote.Put(r, rawManifest{raw: raw, mt: types.OCIManifestSchema1}, ro...); err != nil {
		return v1.Hash{}, fmt.Errorf("pushing database manifest to %s: %w", ref, err)
	}
	h, _, err := v1.SHA256(bytes.NewReader(raw))
	return h, err
}

// compress gzips src into w, reproducibly (no name, no time), and returns
// the hex sha256 of src.
func compress(src string, w io.Writer) (string, error) {
	f, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer f.Close()
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.Copy(zw, io.TeeReader(f, h)); err != nil {
		return "", err
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Pull fetches a database pushed by Push and, once its digests and schema
// version check out, atomically replaces the database at dbPath with it.
func Pull(ctx context.Context, ref, dbPath string, opts ...BundleOption) (Meta, error) {
	r, ro, err := bundleSetup(ctx, ref, opts)
	if err != nil {
		return Meta{}, err
	}
	desc, err := remote.Get(r, ro...)
	if err != nil {
		return Meta{}, fmt.Errorf("pulling database from %s: %w", ref, err)
	}
	var m v1.Manifest
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		return Meta{}, fmt.Errorf("pulling database from %s: reading manifest: %w", ref, err)
	}
	if m.ArtifactType != ArtifactType || len(m.Layers) != 1 || m.Layers[0].MediaType != LayerMediaType {
		return Meta{}, fmt.Errorf("pulling database from %s: not a drydock database (artifactType %q, %d layers)", ref, m.ArtifactType, len(m.Layers))
	}
	if v := m.Annotations[AnnotationSchemaVersion]; v != fmt.Sprint(SchemaVersion) {
		return Meta{}, &SchemaError{Path: ref, Found: atoiOr0(v), Supported: SchemaVersion}
	}
	l, err := remote.Layer(r.Context().Digest(m.Layers[0].Digest.String()), ro...)
	if err != nil {
		return Meta{}, fmt.Errorf("pulling database from %s: %w", ref, err)
	}
	rc, err := l.Compressed() // verifies the digest at EOF
	if err != nil {
		return Meta{}, fmt.Errorf("pulling database from %s: %w", ref, err)
	}
	defer rc.Close()
	if err := os.MkdirAll(filepath.Dir(dbPath), 0o755); err != nil {
		return Meta{}, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dbPath), ".pull-*.db")
	if err != nil {
		return Meta{}, fmt.Errorf("pulling database: %w", err)
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	err = func() error {
		zr, err := gzip.NewReader(rc)
		if err != nil {
			return err
		}
		if _, err := io.Copy(io.MultiWriter(tmp, h), zr); err != nil {
			return err
		}
		// Drain to EOF so the layer digest is verified.
		if _, err := io.Copy(io.Discard, rc); err != nil {
			return err
		}
		if err := tmp.Sync(); err != nil {
			return err
		}
		if err := tmp.Chmod(0o644); err != nil {
			return err
		}
		return tmp.Close()
	}()
	if err != nil {
		tmp.Close()
		return Meta{}, fmt.Errorf("pulling database from %s: %w", ref, err)
	}
	if want, got := m.Annotations[AnnotationSHA256], hex.EncodeToString(h.Sum(nil)); want != "" && want != got {
		return Meta{}, fmt.Errorf("pulling database from %s: sha256 %s, manifest says %s", ref, got, want)
	}
	db, err := Open(tmp.Name())
	if err != nil {
		return Meta{}, fmt.Errorf("pulling database from %s: %w", ref, err)
	}
	meta := db.Meta()
	db.Close()
	if err := os.Rename(tmp.Name(), dbPath); err != nil {
		return Meta{}, fmt.Errorf("replacing database %s: %w", dbPath, err)
	}
	syncDir(filepath.Dir(dbPath))
	return meta, nil
}

func atoiOr0(s string) int {
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		return 0
	}
	return n
}
