// Package refusal names why an image cannot be judged at all, as errors that
// say so: the image is not what it claims (corrupt), tries to climb out of
// its root (hostile), hides the package database a verdict depends on
// (unverifiable), costs more than the configured limits (over-limit), or
// holds an OS drydock does not scan or patch (unsupported).
//
// Every such error is deterministic: the same bytes give the same refusal
// on every attempt, so retrying cannot fix it. *Error says so with
// Permanent, the method a caller classifies with errors.As, without
// depending on this package:
//
//	var p interface{ Permanent() bool }
//	if errors.As(err, &p) && p.Permanent() { /* do not retry */ }
//
// KindOf tells which kind it is, for reports and verdict reasons. The
// packages that read images (rootfs, osinfo, inventory, scan, patch) return
// these errors; they are one vocabulary for the gate, `drydock scan` and
// `drydock patch` alike.
package refusal

import (
	"errors"
	"fmt"
	"strings"
)

// Kind is why an image is refused.
type Kind string

// The kinds of refusal.
const (
	// Unverifiable: an OS of a supported family whose package database is
	// missing, empty or removed by a whiteout, so its packages cannot be
	// known ("0 findings" would be a lie).
	Unverifiable Kind = "unverifiable"
	// Hostile: entries no honest image builder writes: names or link
	// targets that climb out of the image root, NUL bytes in names.
	Hostile Kind = "hostile"
	// Corrupt: content that does not match its digest (a layer against
	// its manifest digest or its config diff_id), or layers that cannot be
	// read although their bytes are the ones the digest names.
	Corrupt Kind = "corrupt"
	// OverLimit: more packages, findings, package-database bytes, entries
	// or uncompressed bytes than the configured limits allow.
	OverLimit Kind = "over-limit"
	// Unsupported: an OS drydock cannot identify, scan or patch.
	Unsupported Kind = "unsupported"
)

// Kinds lists every kind, in a fixed order.
var Kinds = []Kind{Unverifiable, Hostile, Corrupt, OverLimit, Unsupported}

// Error is a refusal. Reason says what made it so, naming the entry, the
// digest or the limit; Digest and Entry repeat them for programs when they
// apply; Err is the underlying cause, when there is one (for example
// rootfs.ErrLimit or osinfo.ErrUnsupportedOS), and is matched by errors.Is.
type Error struct {
	Kind   Kind
	Reason string
	// Digest is the layer or blob digest concerned, when one is.
	Digest string
	// Entry is the tar entry (or database file) concerned, when one is.
	Entry string
	Err   error
}

// New returns a refusal of kind with a formatted reason. A %w verb in
// format wraps its argument as Err, as fmt.Errorf does.
func New(kind Kind, format string, args ...any) *Error {
	wrapped := fmt.Errorf(format, args...)
	return &Error{Kind: kind, Reason: wrapped.Error(), Err: errors.Unwrap(wrapped)}
}

// Error reads "<kind> image: <reason>", e.g. "hostile image: layer 2
// (sha256:…): entry \"../x\": name escapes the image root".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(string(e.Kind))
	b.WriteString(" image")
	if e.Reason != "" {
		b.WriteString(": ")
		b.WriteString(e.Reason)
	} else if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Permanent reports true: the same image is refused the same way on every
// attempt.
func (e *Error) Permanent() bool { return true }

// Is matches a target *Error of the same kind with no reason, so that
// errors.Is(err, &refusal.Error{Kind: refusal.Hostile}) asks for the kind.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Reason == "" && t.Err == nil && t.Kind == e.Kind
}

// KindOf returns the kind of the first refusal in err's chain.
func KindOf(err error) (Kind, bool) {
	var r *Error
	if errors.As(err, &r) {
		return r.Kind, true
	}
	return "", false
}

// IsPermanent reports whether any error in err's chain says, through a
// Permanent() bool method, that retrying cannot help. It is the check the
// gate makes; it does not depend on the error being a *Error.
func IsPermanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}
