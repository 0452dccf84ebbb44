package config

import "fmt"

// MinMemoryLimit is the smallest memoryLimit accepted: below it the Go
// runtime would collect garbage without pause.
const MinMemoryLimit = 64 << 20

// NoMemoryLimit (memoryLimit: -1) sets no soft memory limit, even in a
// cgroup with a memory limit.
const NoMemoryLimit = -1

// validateMemoryLimit checks memoryLimit: 0 (the default: a share of the
// cgroup's memory limit when there is one, else none; GOMEMLIMIT wins),
// -1 (none), or bytes, at least MinMemoryLimit.
func validateMemoryLimit(n int64) []error {
	if n == 0 || n == NoMemoryLimit || n >= MinMemoryLimit {
		return nil
	}
	return []error{fmt.Errorf("memoryLimit: %d, want 0 (default), -1 (none) or at least %d bytes", n, int64(MinMemoryLimit))}
}
