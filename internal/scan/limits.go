package scan

import (
	"errors"
	"fmt"

	"github.com/drydock-project/drydock/internal/inventory"
	"github.com/drydock-project/drydock/internal/refusal"
	"github.com/drydock-project/drydock/internal/rootfs"
)

// Limits bound what one image may cost to judge: the gate, `drydock scan`
// and `drydock patch` pass the same struct. A zero field takes its
// default (DefaultLimits); a negative one is an error. Going over a limit
// is a *refusal.Error of kind refusal.OverLimit that names the limit and
// the value, found as early as the input allows: a database of a million
// packages is refused after reading MaxPackages of them.
type Limits struct {
	// MaxPackages bounds the installed packages, all databases together.
	MaxPackages int `json:"maxPackages,omitempty" yaml:"maxPackages,omitempty"`
	// MaxFindings bounds the findings of one image, counted before
	// filters: what the match costs in memory.
	MaxFindings int `json:"maxFindings,omitempty" yaml:"maxFindings,omitempty"`
	// MaxDatabaseBytes bounds the bytes of the package database files
	// read (checked from their sizes before any is parsed), and is what
	// the image's single pass keeps of them in memory.
	MaxDatabaseBytes int64 `json:"maxDatabaseBytes,omitempty" yaml:"maxDatabaseBytes,omitempty"`
	// MaxEntries bounds the tar entries of all the image's layers (each
	// costs its metadata in memory while the image is judged).
	MaxEntries int `json:"maxEntries,omitempty" yaml:"maxEntries,omitempty"`
	// MaxLayerBytes bounds the uncompressed bytes of one layer (a
	// decompression bomb costs time and, when spooled, disk).
	MaxLayerBytes int64 `json:"maxLayerBytes,omitempty" yaml:"maxLayerBytes,omitempty"`
}

// Default limits: far above real images, far below what exhausts a small
// server. Judging an image at all of them at once stays within a few
// hundred MB.
const (
	DefaultMaxPackages      = inventory.DefaultMaxPackages      // 20,000
	DefaultMaxFindings      = 50_000                            // about 25 MB of findings in memory
	DefaultMaxDatabaseBytes = inventory.DefaultMaxDatabaseBytes // 128 MiB
	DefaultMaxEntries       = 500_000                           // tar entries, all layers
	DefaultMaxLayerBytes    = rootfs.DefaultMaxLayerSize        // 16 GiB
)

// DefaultLimits returns the default limits.
func DefaultLimits() Limits {
	return Limits{MaxPackages: DefaultMaxPackages, MaxFindings: DefaultMaxFindings,
		MaxDatabaseBytes: DefaultMaxDatabaseBytes, MaxEntries: DefaultMaxEntries, MaxLayerBytes: DefaultMaxLayerBytes}
}

// Validate reports every negative field, by name.
func (l Limits) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int64
	}{{"maxPackages", int64(l.MaxPackages)}, {"maxFindings", int64(l.MaxFindings)},
		{"maxDatabaseBytes", l.MaxDatabaseBytes}, {"maxEntries", int64(l.MaxEntries)}, {"maxLayerBytes", l.MaxLayerBytes}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("limits.%s: %d is negative (0 takes the default)", f.name, f.v))
		}
	}
	return errors.Join(errs...)
}

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	if l.MaxPackages == 0 {
		l.MaxPackages = d.MaxPackages
	}
	if l.MaxFindings == 0 {
		l.MaxFindings = d.MaxFindings
	}
	if l.MaxDatabaseBytes == 0 {
		l.MaxDatabaseBytes = d.MaxDatabaseBytes
	}
	if l.MaxEntries == 0 {
		l.MaxEntries = d.MaxEntries
	}
	if l.MaxLayerBytes == 0 {
		l.MaxLayerBytes = d.MaxLayerBytes
	}
	return l
}

// RootFSOptions are the rootfs.New options that apply l to the image's
// single pass: entries, layer size, and a content budget large enough to
// keep the package databases l allows (so none is re-read lazily), plus
// the small release files.
func (l Limits) RootFSOptions() []rootfs.Option {
	l = l.WithDefaults()
	return []rootfs.Option{
		rootfs.WithMaxEntries(l.MaxEntries),
		rootfs.WithMaxLayerSize(l.MaxLayerBytes),
		rootfs.WithMaxContentBytes(l.MaxDatabaseBytes + 1<<20),
	}
}

// AnalyzerOptions are the inventory options that apply l to each
// analyzer.
func (l Limits) AnalyzerOptions() []inventory.Option {
	l = l.WithDefaults()
	return []inventory.Option{inventory.WithMaxPackages(l.MaxPackages), inventory.WithMaxDatabaseBytes(l.MaxDatabaseBytes)}
}

// WithLimits sets the scanner's limits (DefaultLimits otherwise). Unless
// WithAnalyzers replaces them, the default analyzers are built with them.
func WithLimits(l Limits) Option {
	return func(s *Scanner) error {
		if err := l.Validate(); err != nil {
			return err
		}
		s.limits = l.WithDefaults()
		s.limitsSet = true
		return nil
	}
}

func overPackages(n, limit int) error {
	return &refusal.Error{Kind: refusal.OverLimit,
		Reason: fmt.Sprintf("over the package limit: %d installed packages, limit %d", n, limit)}
}

func overFindings(limit int, src string) error {
	return &refusal.Error{Kind: refusal.OverLimit, Entry: src,
		Reason: fmt.Sprintf("over the findings limit: more than %d findings (reached while matching source package %s), limit %d", limit, src, limit)}
}
