package replicas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/drydock-project/drydock/internal/gc"
	"github.com/drydock-project/drydock/internal/registry"
)

// TestCollectionSeenByEveryReplica: a blob one replica's collection
// deleted, pushed again through a replica that still remembers it (its
// cache in front of object storage saw it before), is stored again and
// readable through every replica. The write's existence check goes
// through the storage without the cache; through the cache it finds the
// blob "there", links it, and the data is gone.
//
// The schedule is off: its collection at start would delete the blob
// before the test's own, which then finds nothing to delete.
func TestCollectionSeenByEveryReplica(t *testing.T) {
	c := newCluster(t, 3, clusterOptions{gc: map[string]any{"schedule": "0s"}})
	c.addUser("ops", "ops-password", "admin")
	c.startAll()
	blob := []byte("a blob collected while every replica remembers it: " + t.Name())
	d := digest.FromBytes(blob)
	const repo = "quarantine/collected"
	do := func(r *replica, method, path string, body []byte) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, "http://"+r.addr+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth("ops", "ops-password")
		if body != nil {
			req.Header.Set("Content-Type", "application/octet-stream")
			if strings.HasPrefix(path, "/api/") {
				req.Header.Set("Content-Type", "application/json")
			}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	push := func(r *replica) {
		t.Helper()
		if code, b := do(r, http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), blob); code != http.StatusCreated {
			t.Fatalf("replica %d: push: %d %s", r.i, code, b)
		}
	}

	push(c.replicas[0])
	for _, r := range c.replicas { // every replica now remembers the blob
		if code, b := do(r, http.MethodGet, "/v2/"+repo+"/blobs/"+d.String(), nil); code != http.StatusOK || !bytes.Equal(b, blob) {
			t.Fatalf("replica %d: get before the collection: %d %q", r.i, code, b)
		}
	}
	if code, b := do(c.replicas[0], http.MethodDelete, "/v2/"+repo+"/blobs/"+d.String(), nil); code != http.StatusAccepted {
		t.Fatalf("unlink: %d %s", code, b)
	}

	// A collection, on whichever replica takes the job; it deletes the
	// blob's data.
	code, b := do(c.replicas[0], http.MethodPost, "/api/v1/gc", []byte(`{"skipRetention":true}`))
	if code != http.StatusAccepted {
		t.Fatalf("POST /api/v1/gc: %d %s", code, b)
	}
	var run gc.Run
	if err := json.Unmarshal(b, &run); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for !run.Finished() {
		if time.Now().After(deadline) {
			t.Fatalf("collection %d not finished: %+v", run.ID, run)
		}
		time.Sleep(200 * time.Millisecond)
		code, b := do(c.replicas[0], http.MethodGet, fmt.Sprintf("/api/v1/gc/runs/%d", run.ID), nil)
		if code != http.StatusOK || json.Unmarshal(b, &run) != nil {
			t.Fatalf("GET run %d: %d %s", run.ID, code, b)
		}
	}
	if run.State != gc.StateSucceeded || run.Report == nil || run.Report.Collection == nil ||
		!slices.ContainsFunc(run.Report.Collection.Items, func(it registry.Item) bool { return it.Kind == "blob" && it.Digest == d.String() }) {
		t.Fatalf("collection %d did not delete %s: %+v", run.ID, d, run)
	}
	// The replicas that did not run it still remember the blob.
	marker := fmt.Sprintf(`"msg":"garbage collection finished","component":"gc","run":%d,`, run.ID)
	var stale []*replica
	for _, r := range c.replicas {
		r.logMu.Lock()
		ran := strings.Contains(r.logs.String(), marker)
		r.logMu.Unlock()
		if !ran {
			stale = append(stale, r)
		}
	}
	if len(stale) != len(c.replicas)-1 {
		t.Fatalf("%d replicas did not log the end of collection %d; want %d", len(stale), run.ID, len(c.replicas)-1)
	}

	push(stale[0])
	for _, r := range c.replicas {
		if code, b := do(r, http.MethodGet, "/v2/"+repo+"/blobs/"+d.String(), nil); code != http.StatusOK || !bytes.Equal(b, blob) {
			t.Errorf("replica %d: get after a push through replica %d: %d %q", r.i, stale[0].i, code, b)
		}
	}
}
