package server

import (
	"log/slog"
	"os"
	"strings"
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
	_ = srv.gate.close(t.Context())
	_ = srv.workflows.close()
	_ = srv.gc.close()
	_ = srv.closeAuth()
	_ = srv.closeAudit()
	_ = srv.storage.Close()
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
