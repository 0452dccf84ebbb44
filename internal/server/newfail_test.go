package server

import (
	"context"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/drydock-project/drydock/internal/config"
)

// TestNewFailureClosesWhatItOpened: when New fails late (here at the
// Kubernetes side, after the audit log, garbage collection, the gate, the
// workflows and the user store are open), it closes everything it opened:
// the process holds no more files than before, and the data directory
// opens again.
func TestNewFailureClosesWhatItOpened(t *testing.T) {
	cfg := config.Default()
	cfg.Data = t.TempDir()
	cfg.Addr = "127.0.0.1:0"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := cfg
	bad.Kube.Watch, bad.Kube.Kubeconfig = true, "/nonexistent/kubeconfig" // fails in openKube, New's last step
	before := openFiles(t)
	if _, err := New(t.Context(), bad, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "kube.watch") {
		t.Fatalf("New with a missing kubeconfig: %v, want the kube.watch error", err)
	}
	if after := openFiles(t); after > before {
		t.Errorf("%d files open after New failed, %d before: it leaked what it opened", after, before)
	}
	srv, err := New(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("New after a failed New on the same data: %v", err)
	}
	closeUnserved(srv)
}

// openFiles counts the process's open file descriptors.
func openFiles(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestServeFailureClosesWhatNewOpened: when Serve fails at start (here
// metrics.addr is taken), it closes the server's parts as a clean stop
// does: the data directory opens again in the process.
func TestServeFailureClosesWhatNewOpened(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := config.Default()
	cfg.Data = t.TempDir()
	cfg.Addr = "127.0.0.1:0"
	cfg.Metrics.Addr = taken.Addr().String()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := New(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := srv.Serve(t.Context(), ln); err == nil || !strings.Contains(err.Error(), "metrics.addr") {
		t.Fatalf("Serve with metrics.addr taken: %v, want the metrics.addr error", err)
	}
	cfg.Metrics.Addr = ""
	again, err := New(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("New after a failed Serve on the same data: %v", err)
	}
	closeUnserved(again)
}

// closeUnserved closes every part of a Server that New built and Serve
// never ran.
func closeUnserved(s *Server) { s.shutdown(context.Background(), func() {}, &sync.WaitGroup{}) }
