// Package xzdec decompresses xz streams from untrusted sources (the
// members of .deb files, Packages.xz indexes): through the host's xz
// program (liblzma, about twice as fast as Go's decoder, and its
// dictionary lives and dies with the process instead of in our heap) when
// PATH has one, as containerd decompresses gzip through unpigz, else with
// github.com/ulikunitz/xz.
//
// Both decoders read the stream through the same guard, which walks the
// container structure and refuses a block whose LZMA2 dictionary exceeds
// the caller's bound before any decoder sees its header, and both accept
// exactly the same input: one or more concatenated xz streams with stream
// padding between and after them, nothing else after the last one. Their
// errors classify the same: ErrTooLarge for a dictionary beyond the bound,
// ErrFormat for corrupt, truncated or trailing data, and the source's own
// read errors unchanged.
package xzdec

import (
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"

	"github.com/ulikunitz/xz"
)

var (
	// ErrFormat reports a corrupt or truncated xz stream, or data after it.
	ErrFormat = errors.New("malformed xz stream")
	// ErrTooLarge reports a block asking for a dictionary beyond the bound.
	ErrTooLarge = errors.New("xz dictionary too large")
)

// Decoder chooses how streams are decoded. The zero Decoder uses the xz
// program found on PATH (looked up once) if it is XZ Utils 5.2 or later,
// else Go's decoder.
type Decoder struct {
	program string // "" with native: Go's decoder; "" without: look up
	native  bool
}

// Native returns a Decoder that decodes in Go.
func Native() Decoder { return Decoder{native: true} }

// Program returns a Decoder that runs the xz program at path.
func Program(path string) Decoder { return Decoder{program: path} }

// hostXZ is the xz program on PATH if it is XZ Utils' 5.2 or later, or
// "": another xz (BusyBox's) may lack the options startProgram passes.
var hostXZ = sync.OnceValue(func() string { return probe("xz") })

// probe returns the path of the program name on PATH if its --version
// says XZ Utils 5.2 or later, else "".
func probe(name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		return ""
	}
	cmd := exec.Command(p, "--version")
	cmd.Env = []string{"LC_ALL=C"}
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	_, v, ok := strings.Cut(string(out), "(XZ Utils) ")
	var major, minor int
	if _, err := fmt.Sscanf(v, "%d.%d", &major, &minor); !ok || err != nil || major < 5 || major == 5 && minor < 2 {
		return ""
	}
	return p
}

// resolve returns the program d runs, or "" for Go's decoder.
func (d Decoder) resolve() string {
	switch {
	case d.native:
		return ""
	case d.program != "":
		return d.program
	}
	return hostXZ()
}

// String names the decoder: "xz program PATH" or "Go decoder".
func (d Decoder) String() string {
	if p := d.resolve(); p != "" {
		return "xz program " + p
	}
	return "Go decoder"
}

// NewReader returns a reader of r's xz stream(s) decompressed, refusing a
// dictionary beyond maxDict bytes. The caller must Close it: Close stops
// the decoder (the xz process is killed and reaped) whether or not the
// stream was read to its end, and returns only once nothing reads r any
// more (a Read of r in progress is waited for). The reader reports io.EOF
// only once the whole input, to r's io.EOF, was checked. It is not safe
// for concurrent use.
func (d Decoder) NewReader(r io.Reader, maxDict int64) (io.ReadCloser, error) {
	src := &source{r: &xzGuard{r: r, maxDict: maxDict}}
	if p := d.resolve(); p != "" {
		return startProgram(p, src, maxDict)
	}
	z, err := xz.NewReader(src)
	if err != nil {
		return nil, src.classify(err)
	}
	return &native{z: z, src: src}, nil
}

// source records the first error, other than io.EOF, that reading the
// guarded input gave: the guard's refusal or the input's own error, which
// is what a decoder's error then stems from.
type source struct {
	r   io.Reader
	err error
}

func (s *source) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	return n, err
}

// classify turns a decoder's failure into the package's error: what the
// input gave if it failed, else the decoder's complaint as ErrFormat.
func (s *source) classify(decoderErr error) error {
	switch err := s.err; {
	case err == nil:
		return fmt.Errorf("%w: %v", ErrFormat, decoderErr)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("truncated: %w", ErrFormat)
	default:
		return err // ErrFormat or ErrTooLarge from the guard, or r's own
	}
}

// native decodes with github.com/ulikunitz/xz.
type native struct {
	z   *xz.Reader
	src *source
	err error
}

func (n *native) Read(p []byte) (int, error) {
	if n.err != nil {
		return 0, n.err
	}
	k, err := n.z.Read(p)
	if err != nil && err != io.EOF {
		err = n.src.classify(err)
	}
	n.err = err
	return k, err
}

// Close releases nothing: the Go decoder holds no resource but memory.
func (n *native) Close() error {
	if n.err == nil {
		n.err = errors.New("xz: read after Close")
	}
	return nil
}
