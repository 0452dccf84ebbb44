package xzdec

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
)

// memOverhead is what liblzma's decoder needs besides the dictionary, with
// room to spare: the limit must never refuse what the guard let through.
const memOverhead = 8 << 20

// program decodes by running the xz program: the input is copied to its
// stdin (by os/exec's goroutine), its stdout read through a buffer.
type program struct {
	cmd    *exec.Cmd
	out    *bufio.Reader
	src    *source
	stderr *tail
	done   bool  // the process was waited for
	err    error // what Read returns once done
}

func startProgram(path string, src *source, maxDict int64) (*program, error) {
	// Only the .xz format (not .lzma or raw), one thread, a memory limit
	// as a second bound, and no XZ_OPT or XZ_DEFAULTS from our
	// environment (dpkg unsets them too); without --single-stream, xz
	// decodes concatenated streams and padding to the end of its input.
	cmd := exec.Command(path, "--decompress", "--stdout", "--format=xz", "--threads=1",
		"--memlimit-decompress="+strconv.FormatInt(maxDict+memOverhead, 10))
	cmd.Env = []string{"LC_ALL=C"}
	cmd.Stdin = src
	p := &program{cmd: cmd, src: src, stderr: &tail{max: 1 << 10}}
	cmd.Stderr = p.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("xz: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("xz: starting %s: %w", path, err)
	}
	p.out = bufio.NewReaderSize(out, 64<<10)
	return p, nil
}

func (p *program) Read(b []byte) (int, error) {
	if p.done {
		return 0, p.err
	}
	n, err := p.out.Read(b)
	if err == nil {
		return n, nil
	}
	// The output ended (or broke): the process has exited or is about to;
	// wait for it, and for the copy of its input, before judging.
	werr := p.cmd.Wait()
	p.done = true
	switch {
	case p.src.err != nil || (werr != nil && !isExit(werr)):
		// The input failed (the guard refused it, or r did): xz saw it
		// end early and complained, but the cause is here.
		p.err = p.src.classify(werr)
	case werr != nil:
		p.err = fmt.Errorf("%w: xz: %s", ErrFormat, p.stderr.text(werr))
	case err != io.EOF:
		p.err = fmt.Errorf("xz: reading its output: %w", err)
	default:
		p.err = io.EOF
	}
	return n, p.err
}

// Close kills the process unless it was waited for already, and reaps it
// and os/exec's goroutines.
func (p *program) Close() error {
	if p.done {
		return nil
	}
	p.done = true
	p.err = errors.New("xz: read after Close")
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait() // "signal: killed", or how it ended before the kill
	return nil
}

func isExit(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee)
}

// tail keeps the first max bytes written to it (xz's messages), dropping
// the rest without failing the writer.
type tail struct {
	b   []byte
	max int
}

func (t *tail) Write(p []byte) (int, error) {
	if room := t.max - len(t.b); room > 0 {
		t.b = append(t.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// text is xz's message, or how it ended when it said nothing.
func (t *tail) text(exit error) string {
	if s := strings.TrimSpace(strings.ReplaceAll(string(t.b), "xz: (stdin): ", "")); s != "" {
		return s
	}
	return exit.Error()
}
