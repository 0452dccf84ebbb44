package oci

import (
	"io"
	"sync"
)

// reporter serializes calls to a progress callback.
type reporter struct {
	mu sync.Mutex
	fn func(Progress)
}

func newReporter(fn func(Progress)) *reporter { return &reporter{fn: fn} }

func (r *reporter) report(p Progress) {
	if r == nil || r.fn == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fn(p)
}

// reader wraps rd so that reading reports progress for p (Complete counts
// bytes read); the final report (Done) is sent at EOF.
func (r *reporter) reader(rd io.Reader, p Progress) io.Reader {
	if r == nil || r.fn == nil {
		return rd
	}
	r.report(p)
	return &progressReader{r: rd, rep: r, p: p}
}

const progressStep = 256 << 10

type progressReader struct {
	r    io.Reader
	rep  *reporter
	p    Progress
	last int64
	done bool
}

func (pr *progressReader) Read(b []byte) (int, error) {
	n, err := pr.r.Read(b)
	pr.p.Complete += int64(n)
	if err == io.EOF && !pr.done {
		pr.done = true
		pr.p.Done = true
		pr.rep.report(pr.p)
	} else if pr.p.Complete-pr.last >= progressStep {
		pr.last = pr.p.Complete
		pr.rep.report(pr.p)
	}
	return n, err
}
