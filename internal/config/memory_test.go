package config

import (
	"strings"
	"testing"
)

// TestMemoryKeys: patch.indexMemory and memoryLimit are read from the
// file, default to 0 (the engine's bound; the cgroup's share), and values
// out of bounds are refused naming the key.
func TestMemoryKeys(t *testing.T) {
	if d := Default(); d.Patch.IndexMemory != 0 || d.MemoryLimit != 0 {
		t.Errorf("defaults patch.indexMemory %d, memoryLimit %d; want 0, 0", d.Patch.IndexMemory, d.MemoryLimit)
	}
	for _, tc := range []struct {
		yaml          string
		index, limit  int64
		wantErrNaming string
	}{
		{yaml: "patch: {indexMemory: 33554432}\nmemoryLimit: 536870912", index: 32 << 20, limit: 512 << 20},
		{yaml: "memoryLimit: -1", limit: NoMemoryLimit},
		{yaml: "memoryLimit: 67108864", limit: MinMemoryLimit},
		{yaml: "patch: {indexMemory: 0}\nmemoryLimit: 0"},
		{yaml: "patch: {indexMemory: -1}", wantErrNaming: "patch.indexMemory: -1"},
		{yaml: "memoryLimit: -2", wantErrNaming: "memoryLimit: -2"},
		{yaml: "memoryLimit: 1048576", wantErrNaming: "memoryLimit: 1048576"},
		{yaml: "memoryLimit: 67108863", wantErrNaming: "memoryLimit: 67108863"},
	} {
		cfg := Default()
		if err := Decode(strings.NewReader(tc.yaml), &cfg); err != nil {
			t.Fatalf("%s: %v", tc.yaml, err)
		}
		err := cfg.Validate()
		if tc.wantErrNaming != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErrNaming) {
				t.Errorf("%q: %v, want an error naming %q", tc.yaml, err, tc.wantErrNaming)
			}
			continue
		}
		if err != nil || cfg.Patch.IndexMemory != tc.index || cfg.MemoryLimit != tc.limit {
			t.Errorf("%q: %v, patch.indexMemory %d, memoryLimit %d; want %d, %d", tc.yaml, err, cfg.Patch.IndexMemory, cfg.MemoryLimit, tc.index, tc.limit)
		}
	}
}
