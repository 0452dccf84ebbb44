package e2e

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// slowBody yields data in chunks with a pause between them; after the
// first chunk it closes started and sends the rest once resume is closed.
type slowBody struct {
	data    []byte
	chunk   int
	pause   time.Duration
	started chan struct{}
	resume  chan struct{}
	sent    int
}

func (b *slowBody) Read(p []byte) (int, error) {
	if b.sent >= len(b.data) {
		return 0, io.EOF
	}
	if b.sent == b.chunk {
		close(b.started)
		<-b.resume
	}
	if b.sent > 0 && b.sent%b.chunk == 0 {
		time.Sleep(b.pause)
	}
	// Never cross a chunk boundary in one read, so pauses fall on them.
	n := min(len(p), b.chunk-b.sent%b.chunk, len(b.data)-b.sent)
	copy(p, b.data[b.sent:b.sent+n])
	b.sent += n
	return n, nil
}

// waitInFlight waits until the server's /metrics counts n requests in
// flight, the scrape itself included.
func waitInFlight(s *serveProc, n int) error {
	const gauge = "drydock_http_requests_in_flight "
	last := ""
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		resp, err := http.Get(s.URL() + "/metrics")
		if err != nil {
			return err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, gauge); ok {
				last = v
				if k, err := strconv.Atoi(v); err == nil && k >= n {
					return nil
				}
			}
		}
	}
	return fmt.Errorf("the server did not count %d requests in flight in a minute (last %q)", n, last)
}

// slowUpload starts an upload and PUTs a 4 MiB blob over about 2 s,
// sending SIGTERM to the server once its handler runs. It
// returns the blob digest and the PUT's status (0 if the request failed).
func slowUpload(t *testing.T, s *serveProc, repo string) (string, int) {
	t.Helper()
	resp, err := http.Post(s.URL()+"/v2/"+repo+"/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("start upload: %s", resp.Status)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "http") {
		loc = s.URL() + loc
	}
	data := make([]byte, 4<<20)
	_, _ = rand.Read(data)
	dgst := fmt.Sprintf("sha256:%x", sha256.Sum256(data))
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	body := &slowBody{data: data, chunk: 256 << 10, pause: 120 * time.Millisecond, started: make(chan struct{}), resume: make(chan struct{})}
	req, err := http.NewRequest(http.MethodPut, loc+sep+"digest="+dgst, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(data))
	req.Header.Set("Content-Type", "application/octet-stream")
	// SIGTERM once the server runs the PUT's handler, not merely once the
	// client has written some of the body: until the server has read the
	// request, its connection is idle to it, and the shutdown closes it.
	signalled := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(body.resume)
		select {
		case <-body.started:
		case <-done: // the PUT failed before its body flowed
			signalled <- nil
			return
		}
		err := waitInFlight(s, 2) // the PUT and the scrape
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		signalled <- err
	}()
	resp, err = http.DefaultClient.Do(req)
	close(done)
	if serr := <-signalled; serr != nil {
		t.Fatal(serr)
	}
	if err != nil {
		return dgst, 0
	}
	resp.Body.Close()
	return dgst, resp.StatusCode
}

func blobStatus(t *testing.T, s *serveProc, repo, dgst string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodHead, s.URL()+"/v2/"+repo+"/blobs/"+dgst, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestGracefulShutdownFinishesInFlightUpload: SIGTERM during an upload lets
// it finish within the shutdown timeout; the blob is there after restart.
func TestGracefulShutdownFinishesInFlightUpload(t *testing.T) {
	data := t.TempDir()
	s := startServe(t, data)
	dgst, code := slowUpload(t, s, "quarantine/slow")
	if code != http.StatusCreated {
		t.Fatalf("in-flight upload after SIGTERM: status %d, want 201\n%s", code, s.Logs())
	}
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("server did not exit after the in-flight upload finished")
	}
	if c := s.cmd.ProcessState.ExitCode(); c != 0 {
		t.Fatalf("exit code %d after SIGTERM", c)
	}
	s = startServe(t, data)
	if st := blobStatus(t, s, "quarantine/slow", dgst); st != http.StatusOK {
		t.Errorf("finished upload not there after restart: HEAD = %d", st)
	}
}

// TestShutdownTimeoutAbandonsUploadCleanly: an upload still running when the
// shutdown timeout expires is cut off and never becomes visible.
func TestShutdownTimeoutAbandonsUploadCleanly(t *testing.T) {
	data := t.TempDir()
	cfg := writeConfig(t, "shutdownTimeout: 300ms\n")
	s := startServe(t, data, "--config", cfg)
	dgst, code := slowUpload(t, s, "quarantine/cut")
	if code == http.StatusCreated {
		t.Fatalf("upload finished although the shutdown timeout should have cut it off")
	}
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("server did not exit after its shutdown timeout")
	}
	if !strings.Contains(s.Logs(), "cut off") {
		t.Errorf("the log does not say requests were cut off:\n%s", s.Logs())
	}
	s = startServe(t, data)
	if st := blobStatus(t, s, "quarantine/cut", dgst); st != http.StatusNotFound {
		t.Errorf("abandoned upload visible after restart: HEAD = %d", st)
	}
	if repos := catalog(t, s); len(repos) != 0 {
		t.Errorf("abandoned upload left repositories: %v", repos)
	}
}
